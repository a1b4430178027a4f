"""The replay oracle loaded from triplets stored in the database."""

import random

import pytest

from annotation.models import ImportBatch, Triplet
from annotation.simulation.oracles import TIE, ReplayOracle

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(make_dataset):
    """A dataset with two conditions and imported triplets; returns (dataset, item ids by external id)."""
    dataset = make_dataset(slug="replayed", n_items=6, conditions=("colour", "shape"))
    items = {int(item.external_id): item.pk for item in dataset.items.all()}
    colour, shape = dataset.conditions.order_by("index")
    batch = ImportBatch.objects.create(dataset=dataset, kind="triplets", source_name="hand-made.csv")

    def record(condition, anchor, closer, farther, source=Triplet.Source.IMPORT):
        Triplet.objects.create(
            dataset=dataset,
            condition=condition,
            anchor_id=items[anchor],
            closer_id=items[closer],
            farther_id=items[farther],
            source=source,
            import_batch=batch if source == Triplet.Source.IMPORT else None,
        )

    # One record per question, in both orientations of the stored pair.
    record(colour, 0, 2, 1)
    record(colour, 0, 3, 4)
    # Conflicting records: 5 over 4 twice, 4 over 5 once; and an even split under "shape".
    record(colour, 1, 5, 4)
    record(colour, 1, 5, 4)
    record(colour, 1, 4, 5)
    record(shape, 0, 1, 2)
    record(shape, 0, 2, 1)
    # Triplets from judgements are not replayed, so a crowd never replays its own answers.
    record(colour, 2, 3, 4, source=Triplet.Source.JUDGEMENT)
    return dataset, items


def test_replay_loads_imported_triplets(stored):
    dataset, _ = stored
    oracle = ReplayOracle.from_dataset(dataset)
    assert oracle.record_count == 7
    assert oracle.question_count == 4
    assert oracle.conflicting_question_count == 2
    assert oracle.conditions == {"colour", "shape"}


def test_replay_orientation_from_database(stored):
    dataset, items = stored
    oracle = ReplayOracle.from_dataset(dataset)
    rng = random.Random(0)
    assert oracle.answer("colour", items[0], items[1], items[2], rng) == items[2]
    assert oracle.answer("colour", items[0], items[2], items[1], rng) == items[2]
    assert oracle.answer("colour", items[0], items[3], items[4], rng) == items[3]
    assert oracle.answer("colour", items[0], items[4], items[3], rng) == items[3]


def test_replay_majority_from_database(stored):
    dataset, items = stored
    oracle = ReplayOracle.from_dataset(dataset)
    rng = random.Random(0)
    assert oracle.answer("colour", items[1], items[4], items[5], rng) == items[5]
    assert oracle.answer("shape", items[0], items[1], items[2], rng) == TIE


def test_replay_unrecorded_and_judgements_tie(stored):
    dataset, items = stored
    oracle = ReplayOracle.from_dataset(dataset)
    rng = random.Random(0)
    assert oracle.answer("colour", items[0], items[1], items[5], rng) == TIE
    assert oracle.answer("colour", items[2], items[3], items[4], rng) == TIE


def test_replay_one_condition(stored):
    dataset, items = stored
    oracle = ReplayOracle.from_dataset(dataset, condition_slug="shape")
    assert oracle.conditions == {"shape"}
    assert oracle.answer("colour", items[0], items[1], items[2], random.Random(0)) == TIE
