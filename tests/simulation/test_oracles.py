"""The attributes and replay oracles on hand-made data, without a database or server."""

import random

import pytest

from annotation.simulation.oracles import TIE, AttributeOracle, OracleError, ReplayOracle

ITEMS = {
    1: {"colour": "red", "height": 10.0},
    2: {"colour": "red", "height": 12.0},
    3: {"colour": "blue", "height": 20.0},
    4: {"colour": "blue", "height": 8.0},
    5: {"colour": "", "height": None},
    6: {"height": 14},
    7: {"colour": "unknown", "height": 30},
    8: {"colour": "red", "height": 11.0},
}
CONDITIONS = {"colour": "colour", "height": "height", "style": ""}


@pytest.fixture
def oracle():
    return AttributeOracle(ITEMS, CONDITIONS)


@pytest.fixture
def rng():
    return random.Random(0)


def test_attribute_kinds_detected(oracle):
    assert oracle.attribute_kind("colour") == "categorical"
    assert oracle.attribute_kind("height") == "numeric"


def test_categorical_shared_value_is_closer(oracle, rng):
    assert oracle.answer("colour", 1, 2, 3, rng) == 2
    assert oracle.answer("colour", 1, 3, 2, rng) == 2
    assert oracle.answer("colour", 3, 2, 4, rng) == 4


def test_categorical_both_or_neither_tie(oracle, rng):
    assert oracle.answer("colour", 1, 2, 8, rng) == TIE
    assert oracle.answer("colour", 1, 3, 4, rng) == TIE


def test_numeric_nearer_value_is_closer(oracle, rng):
    assert oracle.answer("height", 1, 2, 3, rng) == 2
    assert oracle.answer("height", 1, 3, 2, rng) == 2
    assert oracle.answer("height", 3, 1, 2, rng) == 2
    assert oracle.answer("height", 6, 2, 3, rng) == 2


def test_numeric_equal_distances_tie(oracle, rng):
    # 8 and 12 are both 2 away from 10.
    assert oracle.answer("height", 1, 2, 4, rng) == TIE


def test_missing_values_tie(oracle, rng):
    assert oracle.answer("colour", 5, 1, 3, rng) == TIE
    assert oracle.answer("colour", 1, 6, 3, rng) == TIE
    assert oracle.answer("colour", 1, 2, 7, rng) == TIE
    assert oracle.answer("height", 1, 5, 2, rng) == TIE
    assert oracle.answer("height", 5, 1, 2, rng) == TIE


def test_non_number_in_numeric_attribute_ties(rng):
    items = {1: {"size": 1}, 2: {"size": 2}, 3: {"size": "large"}, 4: {"size": 9}}
    oracle = AttributeOracle(items, {"size": "size"}, numeric={"size": True})
    assert oracle.answer("size", 1, 2, 3, rng) == TIE
    assert oracle.answer("size", 1, 2, 4, rng) == 2


def test_mixed_values_are_categorical(rng):
    items = {1: {"size": 1}, 2: {"size": "1"}, 3: {"size": "large"}}
    oracle = AttributeOracle(items, {"size": "size"})
    assert oracle.attribute_kind("size") == "categorical"
    assert oracle.answer("size", 1, 3, 2, rng) == 2


def test_condition_without_attribute_rejected(oracle, rng):
    assert oracle.conditions == {"colour", "height"}
    with pytest.raises(OracleError, match="style"):
        oracle.answer("style", 1, 2, 3, rng)


def test_unknown_item_rejected(oracle, rng):
    with pytest.raises(OracleError, match="99"):
        oracle.answer("colour", 1, 2, 99, rng)


def test_anchor_as_candidate_rejected(oracle, rng):
    with pytest.raises(OracleError):
        oracle.answer("colour", 1, 1, 2, rng)


def test_replay_orientation(rng):
    oracle = ReplayOracle([("overall", 10, 30, 20)])
    assert oracle.answer("overall", 10, 20, 30, rng) == 30
    assert oracle.answer("overall", 10, 30, 20, rng) == 30


def test_replay_unanswered_ties(rng):
    oracle = ReplayOracle([("overall", 10, 30, 20)])
    assert oracle.answer("overall", 10, 20, 40, rng) == TIE
    assert oracle.answer("overall", 20, 10, 30, rng) == TIE
    assert oracle.answer("other", 10, 20, 30, rng) == TIE


def test_replay_majority_decides(rng):
    records = [("c", 1, 2, 3), ("c", 1, 3, 2), ("c", 1, 3, 2), ("c", 4, 2, 3), ("c", 4, 3, 2)]
    oracle = ReplayOracle(records)
    assert oracle.answer("c", 1, 2, 3, rng) == 3
    assert oracle.answer("c", 4, 2, 3, rng) == TIE
    assert oracle.record_count == 5
    assert oracle.question_count == 2
    assert oracle.conflicting_question_count == 2


def test_replay_rejects_degenerate_record():
    with pytest.raises(OracleError):
        ReplayOracle([("c", 1, 1, 2)])
