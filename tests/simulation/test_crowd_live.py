"""The simulated crowd against a live server: real HTTP, real leases, answers stored in the database."""

import itertools

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Condition, ImportBatch, Judgement, Triplet, TripletTask
from annotation.simulation.accounts import simulated_annotator_tokens
from annotation.simulation.crowd import STOP_LIMIT, STOP_NO_TASK, run_crowd
from annotation.simulation.oracles import TIE, AttributeOracle, NoiseModel

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Item number -> attributes. Item 5 has no colour, so questions about it under "colour" tie.
ATTRIBUTES = {
    0: {"colour": "red", "size": 1},
    1: {"colour": "red", "size": 2},
    2: {"colour": "blue", "size": 4},
    3: {"colour": "blue", "size": 7},
    4: {"colour": "green", "size": 11},
    5: {"colour": "", "size": 3},
}


def expected_closer(condition: str, anchor: int, first: int, second: int):
    """The attribute rule, written out independently of the oracle; takes item numbers."""
    anchor_value, first_value, second_value = (ATTRIBUTES[number][condition] for number in (anchor, first, second))
    if condition == "colour":
        if "" in (anchor_value, first_value, second_value):
            return TIE
        first_shares, second_shares = first_value == anchor_value, second_value == anchor_value
        if first_shares == second_shares:
            return TIE
        return first if first_shares else second
    first_distance, second_distance = abs(first_value - anchor_value), abs(second_value - anchor_value)
    if first_distance == second_distance:
        return TIE
    return first if first_distance < second_distance else second


@pytest.fixture
def attributed_dataset(make_dataset):
    """Six items with colour and size, and one task per (condition, anchor, pair): 120 tasks."""
    dataset = make_dataset(slug="crowd", n_items=6, conditions=("colour", "size"), attributes=ATTRIBUTES)
    Condition.objects.filter(dataset=dataset, slug="colour").update(attribute="colour")
    Condition.objects.filter(dataset=dataset, slug="size").update(attribute="size")
    item_ids = sorted(dataset.items.values_list("id", flat=True))
    for condition in dataset.conditions.all():
        for anchor_id in item_ids:
            others = [item_id for item_id in item_ids if item_id != anchor_id]
            for low, high in itertools.combinations(others, 2):
                TripletTask.objects.create(
                    dataset=dataset, condition=condition, anchor_id=anchor_id, candidate_a_id=low, candidate_b_id=high
                )
    return dataset


def item_numbers(dataset) -> dict[int, int]:
    return {item.pk: int(item.external_id) for item in dataset.items.all()}


def test_noiseless_crowd_follows_attributes(live_server, attributed_dataset):
    dataset = attributed_dataset
    numbers = item_numbers(dataset)
    tokens = simulated_annotator_tokens(seed=11, count=3)

    report = run_crowd(
        base_url=live_server.url,
        dataset_slug=dataset.slug,
        tokens=tokens,
        oracle=AttributeOracle.from_dataset(dataset),
        think_time_ms=0,
        seed=11,
        progress=False,
    )

    assert report.errors == 0, report.error_samples
    assert report.answers == 120
    assert report.queue_exhausted
    assert report.agreement == 1.0
    assert Judgement.objects.filter(task__dataset=dataset).count() == 120
    assert TripletTask.objects.filter(dataset=dataset, status=TripletTask.Status.OPEN).count() == 0
    assert Judgement.objects.filter(task__dataset=dataset).values("annotator").distinct().count() == 3

    for judgement in Judgement.objects.filter(task__dataset=dataset).select_related("task__condition"):
        task = judgement.task
        expected = expected_closer(
            task.condition.slug, numbers[task.anchor_id], numbers[task.candidate_a_id], numbers[task.candidate_b_id]
        )
        if expected == TIE:
            assert judgement.choice == Judgement.Choice.TIE, f"task {task.pk} should be a tie"
        else:
            assert numbers[judgement.chosen_item_id] == expected, f"task {task.pk} chose the wrong candidate"

    triplets = Triplet.objects.filter(dataset=dataset, source=Triplet.Source.JUDGEMENT).select_related("condition")
    decided = Judgement.objects.filter(task__dataset=dataset, choice=Judgement.Choice.CANDIDATE).count()
    assert triplets.count() == decided
    assert report.ties == 120 - decided
    for triplet in triplets:
        expected = expected_closer(
            triplet.condition.slug, numbers[triplet.anchor_id], numbers[triplet.closer_id], numbers[triplet.farther_id]
        )
        assert expected == numbers[triplet.closer_id], f"triplet {triplet.pk} disagrees with the attributes"


def test_always_wrong_crowd_stops_at_limit(live_server, attributed_dataset):
    dataset = attributed_dataset
    numbers = item_numbers(dataset)
    tokens = simulated_annotator_tokens(seed=12, count=3)

    report = run_crowd(
        base_url=live_server.url,
        dataset_slug=dataset.slug,
        condition_slug="size",
        tokens=tokens,
        oracle=AttributeOracle.from_dataset(dataset),
        noise=NoiseModel(error_rate=1.0, error_rate_concentration=None),
        max_answers=25,
        think_time_ms=1,
        seed=12,
        progress=False,
    )

    assert report.errors == 0, report.error_samples
    assert report.answers == 25
    assert {annotator.stop_reason for annotator in report.annotators} == {STOP_LIMIT}
    assert report.agreement == 0.0
    judgements = Judgement.objects.filter(task__dataset=dataset).select_related("task__condition")
    assert judgements.count() == 25
    assert {judgement.task.condition.slug for judgement in judgements} == {"size"}
    for judgement in judgements.filter(choice=Judgement.Choice.CANDIDATE):
        task = judgement.task
        expected = expected_closer(
            "size", numbers[task.anchor_id], numbers[task.candidate_a_id], numbers[task.candidate_b_id]
        )
        assert numbers[judgement.chosen_item_id] != expected, f"task {task.pk} got the right answer"


def test_command_replays_imported_triplets(live_server, make_dataset, capsys):
    dataset = make_dataset(slug="replay-crowd", n_items=5, conditions=("overall",))
    condition = dataset.conditions.get()
    ids = sorted(dataset.items.values_list("id", flat=True))
    batch = ImportBatch.objects.create(dataset=dataset, kind="triplets", source_name="hand-made.csv")
    # The recorded crowd prefers the higher id for anchor ids[0] and the lower id elsewhere.
    recorded = {}
    for anchor_id in ids:
        others = [item_id for item_id in ids if item_id != anchor_id]
        for low, high in itertools.combinations(others, 2):
            closer, farther = (high, low) if anchor_id == ids[0] else (low, high)
            recorded[(anchor_id, low, high)] = closer
            Triplet.objects.create(
                dataset=dataset, condition=condition, anchor_id=anchor_id, closer_id=closer, farther_id=farther,
                source=Triplet.Source.IMPORT, import_batch=batch,
            )
            TripletTask.objects.create(
                dataset=dataset, condition=condition, anchor_id=anchor_id, candidate_a_id=low, candidate_b_id=high
            )

    call_command(
        "simulate_crowd", "--dataset", dataset.slug, "--oracle", "replay", "--annotators", "2",
        "--think-time-ms", "0", "--seed", "13", "--url", live_server.url,
    )

    output = capsys.readouterr().out
    assert f"answers:    {len(recorded)} (ties 0, skips 0)" in output
    assert "agreement:  100.0%" in output
    judgements = Judgement.objects.filter(task__dataset=dataset).select_related("task", "annotator__user")
    assert judgements.count() == len(recorded)
    assert {judgement.annotator.user.username for judgement in judgements} <= {"sim-13-0", "sim-13-1"}
    for judgement in judgements:
        task = judgement.task
        assert judgement.chosen_item_id == recorded[(task.anchor_id, task.candidate_a_id, task.candidate_b_id)]


def test_command_rejects_condition_without_attribute(live_server, make_dataset):
    dataset = make_dataset(slug="no-attribute", n_items=4, conditions=("overall",))
    with pytest.raises(CommandError, match="Condition.attribute"):
        call_command("simulate_crowd", "--dataset", dataset.slug, "--oracle", "attributes", "--url", live_server.url)


def test_crowd_stops_on_no_task(live_server, attributed_dataset):
    TripletTask.objects.all().update(status=TripletTask.Status.DONE)
    report = run_crowd(
        base_url=live_server.url,
        dataset_slug=attributed_dataset.slug,
        tokens=simulated_annotator_tokens(seed=14, count=2),
        oracle=AttributeOracle.from_dataset(attributed_dataset),
        think_time_ms=0,
        progress=False,
    )
    assert report.answers == 0
    assert report.errors == 0
    assert {annotator.stop_reason for annotator in report.annotators} == {STOP_NO_TASK}


def test_crowd_with_bad_token_reports_error(live_server, attributed_dataset):
    report = run_crowd(
        base_url=live_server.url,
        dataset_slug=attributed_dataset.slug,
        tokens=["not-a-token"],
        oracle=AttributeOracle.from_dataset(attributed_dataset),
        think_time_ms=0,
        progress=False,
    )
    assert report.answers == 0
    assert report.errors == 1
    assert "Invalid token" in report.error_samples[0]
