"""The replay oracle on the zappos85 crowd triplets: 85 shoe images, one condition.

triplets.csv has the header head,close,far: a worker judged `close` more similar to `head`
than `far`. Items are keyed by their external ids, the image file stems "0" to "84".
The folder is CSN_ZAPPOS85_DIR if set, else ZAPPOS85_DIR below.
"""

import csv
import itertools
import os
import random
from pathlib import Path

import pytest

from annotation.simulation.oracles import TIE, AnnotatorProfile, NoisyOracle, ReplayOracle

REPO = Path(__file__).resolve().parents[2]
ZAPPOS85_DIR = Path(os.environ.get("CSN_ZAPPOS85_DIR", REPO.parent / "shared" / "data" / "zappos85"))
TRIPLETS_CSV = ZAPPOS85_DIR / "triplets.csv"
CONDITION = "overall"

pytestmark = pytest.mark.skipif(
    not TRIPLETS_CSV.is_file(),
    reason=f"zappos85 triplets not found at {TRIPLETS_CSV}; set CSN_ZAPPOS85_DIR to the folder holding triplets.csv",
)


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, str, str]]:
    with TRIPLETS_CSV.open(newline="") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == ["head", "close", "far"]
        return [(row["head"], row["close"], row["far"]) for row in reader]


@pytest.fixture(scope="module")
def oracle(rows) -> ReplayOracle:
    return ReplayOracle((CONDITION, head, close, far) for head, close, far in rows)


def test_zappos85_loads_every_row(rows, oracle):
    assert oracle.record_count == len(rows)
    assert oracle.conditions == {CONDITION}


def test_zappos85_replay_matches_file(rows, oracle):
    rng = random.Random(85)
    sample = rng.sample(rows, 2000)
    mismatches = [
        (head, close, far)
        for head, close, far in sample
        if oracle.answer(CONDITION, head, close, far, rng) != close
        or oracle.answer(CONDITION, head, far, close, rng) != close
    ]
    assert mismatches == []


def test_zappos85_unrecorded_triple_ties(rows, oracle):
    recorded = {(head, *sorted((close, far))) for head, close, far in rows}
    items = [str(number) for number in range(85)]
    unrecorded = next(
        (head, low, high)
        for head in items
        for low, high in itertools.combinations(sorted(item for item in items if item != head), 2)
        if (head, low, high) not in recorded
    )
    head, low, high = unrecorded
    assert oracle.answer(CONDITION, head, low, high, random.Random(0)) == TIE


def test_zappos85_noisy_replay_error_rate(rows, oracle):
    rng = random.Random(86)
    annotator = NoisyOracle(oracle, AnnotatorProfile(error_rate=0.2, careless=False))
    sample = rng.sample(rows, 5000)
    agreed = sum(annotator.answer(CONDITION, head, close, far, rng) == close for head, close, far in sample)
    assert agreed / len(sample) == pytest.approx(0.8, abs=0.02)
