"""seed_tasks: counts, canonical order, no repeats, reproducibility, the two sampling paths."""

from collections import Counter

import numpy as np
import pytest
from django.core.management.base import CommandError

from annotation.importers import seeding
from annotation.importers.seeding import draw_triples, possible_triples, seed_random_tasks
from annotation.models import Condition, TripletTask

pytestmark = pytest.mark.django_db

# Six items give 6 anchors x C(5, 2) pairs = 60 possible tasks per condition.
SIX_ITEM_TRIPLES = 60


@pytest.fixture
def shoes(small_dataset):
    return small_dataset(slug="shoes", n_items=6, conditions=("colour", "shape"))


def task_triples(condition_slug: str) -> list[tuple[int, int, int]]:
    return list(
        TripletTask.objects.filter(condition__slug=condition_slug)
        .order_by("id")
        .values_list("anchor_id", "candidate_a_id", "candidate_b_id")
    )


@pytest.fixture(params=["enumerate", "draw"])
def sampling_path(request, monkeypatch):
    """Run a test with every triple listed, and again with repeated random draws."""
    if request.param == "draw":
        monkeypatch.setattr(seeding, "ENUMERATION_LIMIT", 0)
    return request.param


def test_counts_per_active_condition(run_command, shoes):
    Condition.objects.create(dataset=shoes, slug="retired", name="retired", prompt="?", index=2, is_active=False)

    output = run_command("seed_tasks", dataset="shoes", count=20, seed=1, answers_wanted=3, priority=2.5)

    assert "shoes:colour: created 20 random tasks" in output
    assert "shoes:shape: created 20 random tasks" in output
    assert TripletTask.objects.filter(condition__slug="colour").count() == 20
    assert TripletTask.objects.filter(condition__slug="shape").count() == 20
    assert not TripletTask.objects.filter(condition__slug="retired").exists()
    assert set(TripletTask.objects.values_list("origin", "answers_wanted", "priority")) == {("random", 3, 2.5)}


def test_tasks_canonical_and_distinct(shoes, sampling_path):
    seed_random_tasks(dataset=shoes, count=SIX_ITEM_TRIPLES, seed=3)

    triples = task_triples("colour")
    assert len(triples) == SIX_ITEM_TRIPLES
    assert len(set(triples)) == SIX_ITEM_TRIPLES
    assert all(first < second for _, first, second in triples)
    assert all(anchor not in (first, second) for anchor, first, second in triples)


def test_fewer_possible_than_requested(run_command, shoes):
    output = run_command("seed_tasks", dataset="shoes", condition="colour", count=100, seed=1)

    assert "created 60 random tasks, fewer than the 100 requested" in output
    assert "only 60 new" in output
    assert TripletTask.objects.count() == SIX_ITEM_TRIPLES


def test_existing_tasks_not_repeated(shoes, sampling_path):
    seed_random_tasks(dataset=shoes, count=25, seed=1)
    first_round = set(task_triples("colour"))

    results = seed_random_tasks(dataset=shoes, count=50, seed=1)

    triples = task_triples("colour")
    assert results[0].created == SIX_ITEM_TRIPLES - 25
    assert len(set(triples)) == len(triples) == SIX_ITEM_TRIPLES
    assert first_round <= set(triples)


def test_same_seed_same_tasks(shoes, sampling_path):
    seed_random_tasks(dataset=shoes, count=10, seed=42)
    first = task_triples("colour")
    TripletTask.objects.all().delete()

    seed_random_tasks(dataset=shoes, count=10, seed=42)
    second = task_triples("colour")
    TripletTask.objects.all().delete()
    seed_random_tasks(dataset=shoes, count=10, seed=43)
    other_seed = task_triples("colour")

    assert first == second
    assert first != other_seed


def test_condition_option_seeds_one(run_command, shoes):
    run_command("seed_tasks", dataset="shoes", condition="shape", count=5, seed=1)

    assert TripletTask.objects.filter(condition__slug="shape").count() == 5
    assert not TripletTask.objects.filter(condition__slug="colour").exists()


def test_unknown_condition_lists_known(run_command, shoes):
    with pytest.raises(CommandError) as error:
        run_command("seed_tasks", dataset="shoes", condition="size", count=5)

    assert "'size' not found" in str(error.value)
    assert "colour, shape" in str(error.value)


def test_inactive_condition_rejected(run_command, shoes):
    Condition.objects.filter(slug="shape").update(is_active=False)

    with pytest.raises(CommandError) as error:
        run_command("seed_tasks", dataset="shoes", condition="shape", count=5)

    assert "inactive" in str(error.value)


def test_two_items_give_no_tasks(small_dataset, run_command):
    small_dataset(slug="pair", n_items=2)

    output = run_command("seed_tasks", dataset="pair", count=5, seed=1)

    assert "created 0 random tasks, fewer than the 5 requested" in output
    assert not TripletTask.objects.exists()


def test_draws_are_valid_and_uniform():
    rng = np.random.default_rng(0)
    item_count = 7
    draws = draw_triples(rng, item_count, 70_000)

    anchors, first, second = draws[:, 0], draws[:, 1], draws[:, 2]
    assert np.all(anchors != first)
    assert np.all(anchors != second)
    assert np.all(first < second)
    anchor_shares = np.bincount(anchors, minlength=item_count) / len(draws)
    assert np.all(np.abs(anchor_shares - 1 / item_count) < 0.01)
    pair_counts = Counter(map(tuple, draws[anchors == 0][:, 1:].tolist()))
    assert len(pair_counts) == 15  # C(6, 2) pairs for one anchor
    assert max(pair_counts.values()) / min(pair_counts.values()) < 1.3


def test_possible_triples_formula():
    assert possible_triples(6) == SIX_ITEM_TRIPLES
    assert possible_triples(85) == 296_310
    assert possible_triples(2) == 0
