"""Triplets sampled from item attributes, and the sample_triplets command that stores them."""

import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from training.sampling import is_numeric, sample_categorical, sample_numeric

COLOURS = ["red", "red", "blue", "blue", "green", None, "", "unknown", "green", "red"]
MISSING_POSITIONS = {5, 6, 7}


def test_categorical_closer_shares_anchor_value():
    rows = sample_categorical(COLOURS, 500, np.random.default_rng(0))

    mismatches = [row for row in rows.tolist() if COLOURS[row[0]] != COLOURS[row[1]]]

    assert mismatches == []


def test_categorical_farther_has_another_value():
    rows = sample_categorical(COLOURS, 500, np.random.default_rng(0))

    matches = [row for row in rows.tolist() if COLOURS[row[0]] == COLOURS[row[2]]]

    assert matches == []


def test_categorical_items_are_distinct():
    rows = sample_categorical(COLOURS, 500, np.random.default_rng(0))

    assert all(len(set(row)) == 3 for row in rows.tolist())


def test_categorical_never_samples_missing_values():
    rows = sample_categorical(COLOURS, 500, np.random.default_rng(0))

    assert MISSING_POSITIONS.isdisjoint(rows.ravel().tolist())


def test_categorical_needs_two_values():
    with pytest.raises(ValueError, match="needs two values"):
        sample_categorical(["red", "red", None], 5, np.random.default_rng(0))


BRIGHTNESS = [0.0, 0.1, 0.5, None, 0.9, 1.0, "", 0.45]


def test_numeric_closer_is_nearer_by_the_gap():
    rows = sample_numeric(BRIGHTNESS, 500, np.random.default_rng(0), min_gap=0.2)

    gaps = [
        abs(BRIGHTNESS[farther] - BRIGHTNESS[anchor]) - abs(BRIGHTNESS[closer] - BRIGHTNESS[anchor])
        for anchor, closer, farther in rows.tolist()
    ]

    assert min(gaps) >= 0.2


def test_numeric_never_samples_missing_values():
    rows = sample_numeric(BRIGHTNESS, 500, np.random.default_rng(0), min_gap=0.2)

    assert {3, 6}.isdisjoint(rows.ravel().tolist())


def test_numeric_rejects_an_impossible_gap():
    with pytest.raises(ValueError, match="value gap of at least 5"):
        sample_numeric(BRIGHTNESS, 10, np.random.default_rng(0), min_gap=5)


def test_numeric_needs_distinct_values():
    with pytest.raises(ValueError, match="two distinct values"):
        sample_numeric([0.5, 0.5, 0.5, 0.5], 3, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1, 2.5, None], True), (["red", 1], False), ([True, False], False), ([None, ""], False)],
)
def test_is_numeric(values, expected):
    assert is_numeric(values) is expected


def test_sample_triplets_command_stores_attribute_triplets(colour_dataset):
    from annotation.models import Triplet

    dataset = colour_dataset()
    output = io.StringIO()

    call_command("sample_triplets", dataset=dataset.slug, count=20, seed=3, stdout=output)

    triplets = Triplet.objects.filter(dataset=dataset)
    assert triplets.filter(condition__slug="colour").count() == 20
    assert triplets.filter(condition__slug="brightness").count() == 20
    assert set(triplets.values_list("source", flat=True)) == {Triplet.Source.ATTRIBUTES}
    assert triplets.filter(import_batch__isnull=True).count() == 0
    assert "colour: 20 triplets from attribute 'family'" in output.getvalue()


def test_sample_triplets_command_follows_the_attribute(colour_dataset):
    from annotation.models import Triplet

    dataset = colour_dataset()
    call_command("sample_triplets", dataset=dataset.slug, count=40, seed=3, stdout=io.StringIO())

    wrong = [
        triplet.pk
        for triplet in Triplet.objects.filter(condition__slug="colour").select_related("anchor", "closer", "farther")
        if triplet.anchor.attributes["family"] != triplet.closer.attributes["family"]
        or triplet.anchor.attributes["family"] == triplet.farther.attributes["family"]
    ]
    assert wrong == []


def test_sample_triplets_command_rejects_unknown_dataset(db):
    with pytest.raises(CommandError, match="dataset 'nowhere' not found"):
        call_command("sample_triplets", dataset="nowhere", count=5)
