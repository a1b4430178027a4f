"""The answerability model: relative gaps, the logistic fit, and its weight on strategy scores."""

import math

import pytest
import torch

from training.active import (
    Answerability,
    AnswerabilityFitConfig,
    ConditionalEmbedding,
    ScoringConfig,
    fit_answerability,
    relative_gaps,
    score_triples,
)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# Anchor 0 at the origin; item 1 at distance 1, item 2 at distance 3, item 3 at distance 1.
POINTS = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, -1.0]])
TRIPLES = torch.tensor([[0, 1, 2], [0, 1, 3], [1, 0, 3]])


def test_relative_gaps_hand_computed():
    relative = relative_gaps(POINTS, TRIPLES)

    # |3 - 1| / (1 + 3) = 0.5; |1 - 1| / 2 = 0; from item 1: |D(1,3) - D(1,0)| / sum.
    from_one = math.sqrt(2.0)
    assert relative[0].item() == pytest.approx(0.5)
    assert relative[1].item() == pytest.approx(0.0)
    assert relative[2].item() == pytest.approx((from_one - 1.0) / (from_one + 1.0))


def test_relative_gap_is_zero_when_all_coincide():
    relative = relative_gaps(torch.zeros(3, 2), torch.tensor([[0, 1, 2]]))

    assert relative.tolist() == [0.0]


def test_fit_recovers_known_coefficients():
    generator = seeded(1)
    relative = torch.rand(20_000, generator=generator)
    answered = torch.rand(20_000, generator=generator) < torch.sigmoid(-2.0 + 6.0 * relative)

    model = fit_answerability(relative, answered, AnswerabilityFitConfig(ridge=0.0))

    assert model.intercept == pytest.approx(-2.0, abs=0.15)
    assert model.slope == pytest.approx(6.0, abs=0.3)


def test_fit_needs_both_outcomes():
    relative = torch.rand(200, generator=seeded(2))

    assert fit_answerability(relative, torch.ones(200, dtype=torch.bool)) is None
    assert fit_answerability(relative[:10], torch.arange(10) % 2 == 0) is None


def test_fit_bounds_separable_data():
    relative = torch.linspace(0, 1, 100)
    answered = relative > 0.5

    model = fit_answerability(relative, answered)

    assert 0 < model.slope < 200
    assert model.probability(torch.tensor([0.1])).item() < 0.5 < model.probability(torch.tensor([0.9])).item()


def test_fit_rejects_mismatched_input():
    with pytest.raises(ValueError, match="3 relative gaps but 2 answered flags"):
        fit_answerability(torch.rand(3), torch.ones(2, dtype=torch.bool))


def test_answerability_weights_uncertainty_scores():
    embedding = ConditionalEmbedding(POINTS)
    answerability = Answerability(intercept=-1.0, slope=4.0)

    plain = score_triples("uncertainty", TRIPLES, embedding, ScoringConfig(), seeded())
    weighted = score_triples(
        "uncertainty", TRIPLES, embedding, ScoringConfig(answerability=answerability), seeded()
    )

    # Triple 0: gap 2, P = sigmoid(2), score 1 - sigmoid(2); answerability sigmoid(-1 + 4 * 0.5).
    expected_first = (1 - 1 / (1 + math.exp(-2.0))) / (1 + math.exp(-1.0))
    assert weighted[0].item() == pytest.approx(expected_first, rel=1e-5)
    # Triple 1 is a coin flip (score 0.5) that is unlikely to get an answer.
    assert weighted[1].item() == pytest.approx(0.5 / (1 + math.exp(1.0)), rel=1e-5)
    assert bool((weighted < plain).all())


def test_answerability_leaves_random_scores_alone():
    embedding = ConditionalEmbedding(POINTS)
    config = ScoringConfig(answerability=Answerability(intercept=-5.0, slope=0.0))

    plain = score_triples("random", TRIPLES, embedding, ScoringConfig(), seeded(3))
    weighted = score_triples("random", TRIPLES, embedding, config, seeded(3))

    assert torch.equal(plain, weighted)
