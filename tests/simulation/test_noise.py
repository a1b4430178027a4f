"""The noise model: error rates measured over many seeded answers, careless annotators, skips."""

import random
import statistics

import pytest

from annotation.simulation.oracles import SKIP, TIE, AnnotatorProfile, AttributeOracle, NoiseModel, NoisyOracle

# Item 1 is the anchor; under "colour" item 2 is closer than item 3, and "shape" cannot decide.
ITEMS = {
    1: {"colour": "red", "shape": "round"},
    2: {"colour": "red", "shape": "square"},
    3: {"colour": "blue", "shape": "flat"},
}
ORACLE = AttributeOracle(ITEMS, {"colour": "colour", "shape": "shape"})


def answer_many(profile: AnnotatorProfile, condition: str, count: int, seed: int = 0) -> list:
    annotator = NoisyOracle(ORACLE, profile)
    rng = random.Random(seed)
    return [annotator.answer(condition, 1, 2, 3, rng) for _ in range(count)]


def test_fixed_error_rate_measured():
    answers = answer_many(AnnotatorProfile(error_rate=0.2, careless=False), "colour", 20_000)
    wrong = answers.count(3) / len(answers)
    assert wrong == pytest.approx(0.2, abs=0.015)
    assert answers.count(2) + answers.count(3) == len(answers)


def test_zero_error_rate_matches_oracle():
    answers = answer_many(AnnotatorProfile(error_rate=0.0, careless=False), "colour", 1000)
    assert set(answers) == {2}


def test_careful_annotator_keeps_ties():
    answers = answer_many(AnnotatorProfile(error_rate=0.5, careless=False), "shape", 1000)
    assert set(answers) == {TIE}


def test_careless_annotator_answers_at_random():
    decided = answer_many(AnnotatorProfile(error_rate=0.5, careless=True), "colour", 20_000)
    undecided = answer_many(AnnotatorProfile(error_rate=0.5, careless=True), "shape", 20_000, seed=1)
    assert decided.count(2) / len(decided) == pytest.approx(0.5, abs=0.015)
    assert undecided.count(2) / len(undecided) == pytest.approx(0.5, abs=0.015)
    assert TIE not in undecided


def test_skip_rate_measured():
    answers = answer_many(AnnotatorProfile(error_rate=0.0, careless=False, skip_rate=0.1), "colour", 20_000)
    assert answers.count(SKIP) / len(answers) == pytest.approx(0.1, abs=0.01)
    assert set(answers) == {2, SKIP}


def test_fixed_rate_without_concentration():
    for concentration in (None, 0.0):
        noise = NoiseModel(error_rate=0.15, error_rate_concentration=concentration)
        rates = {profile.error_rate for profile in noise.draw_profiles(50, random.Random(3))}
        assert rates == {0.15}


def test_beta_rates_mean_and_variance():
    noise = NoiseModel(error_rate=0.15, error_rate_concentration=20.0)
    rates = [profile.error_rate for profile in noise.draw_profiles(5000, random.Random(4))]
    expected_variance = 0.15 * 0.85 / 21
    assert statistics.fmean(rates) == pytest.approx(0.15, abs=0.01)
    assert statistics.pvariance(rates) == pytest.approx(expected_variance, rel=0.15)
    assert min(rates) >= 0.0
    assert max(rates) <= 1.0


def test_crowd_error_rate_measured():
    """Over many annotators with Beta-drawn rates, the share of wrong answers is the mean rate."""
    noise = NoiseModel(error_rate=0.1, error_rate_concentration=10.0)
    rng = random.Random(5)
    wrong = total = 0
    for profile in noise.draw_profiles(100, rng):
        annotator = NoisyOracle(ORACLE, profile)
        for _ in range(300):
            wrong += annotator.answer("colour", 1, 3, 2, rng) == 3
            total += 1
    assert wrong / total == pytest.approx(0.1, abs=0.015)


def test_careless_share_is_exact():
    noise = NoiseModel(careless_share=0.25)
    profiles = noise.draw_profiles(20, random.Random(6))
    assert sum(profile.careless for profile in profiles) == 5


def test_careless_share_rounds():
    profiles = NoiseModel(careless_share=0.5).draw_profiles(3, random.Random(7))
    assert sum(profile.careless for profile in profiles) == 2


def test_profiles_repeat_with_seed():
    noise = NoiseModel(error_rate=0.2, careless_share=0.3)
    assert noise.draw_profiles(10, random.Random(8)) == noise.draw_profiles(10, random.Random(8))


def test_noiseless_flag():
    assert NoiseModel().is_noiseless
    assert not NoiseModel(error_rate=0.01).is_noiseless
    assert not NoiseModel(careless_share=0.1).is_noiseless
    assert not NoiseModel(skip_rate=0.1).is_noiseless


@pytest.mark.parametrize(
    "arguments",
    [
        {"error_rate": 1.5},
        {"error_rate": -0.1},
        {"careless_share": 2.0},
        {"skip_rate": -1.0},
        {"error_rate_concentration": -1.0},
    ],
)
def test_invalid_noise_rejected(arguments):
    with pytest.raises(ValueError):
        NoiseModel(**arguments)
