"""Scoring strategies against hand-computed cases and their statistical properties."""

import math

import pytest
import torch

from training.active import STRATEGIES, ConditionalEmbedding, ScoringConfig, score_triples


def sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


def entropy(probability: float) -> float:
    return -probability * math.log(probability) - (1 - probability) * math.log(1 - probability)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registry_names():
    assert set(STRATEGIES) == {"random", "uncertainty", "bald"}


def test_unknown_strategy_raises():
    embedding = ConditionalEmbedding(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="unknown strategy"):
        score_triples("entropy", torch.tensor([[0, 1, 2]]), embedding, ScoringConfig(), seeded())


def test_uncertainty_hand_computed():
    # Anchor at the origin. With mask (1, 0.5), a = (1, 0) and b = (0, 2) are both at
    # distance 1, so P = 1/2. Item 3 = (3, 0) is at distance 3.
    embeddings = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    embedding = ConditionalEmbedding(embeddings, mask=torch.tensor([1.0, 0.5]))
    triples = torch.tensor([[0, 1, 2], [0, 1, 3], [0, 2, 3]])
    scale = 2.0

    scores = score_triples("uncertainty", triples, embedding, ScoringConfig(scale=scale), seeded())

    expected = []
    for gap in (1.0 - 1.0, 3.0 - 1.0, 3.0 - 1.0):
        probability = sigmoid(scale * gap)
        expected.append(0.5 - abs(probability - 0.5))
    assert scores[0].item() == pytest.approx(expected[0], abs=1e-6)
    assert scores[1].item() == pytest.approx(expected[1], abs=1e-6)
    assert scores[2].item() == pytest.approx(expected[2], abs=1e-6)


def test_uncertainty_symmetric_in_candidate_order():
    embedding = ConditionalEmbedding(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]]))
    forward = score_triples(
        "uncertainty", torch.tensor([[0, 1, 2]]), embedding, ScoringConfig(), seeded()
    )
    backward = score_triples(
        "uncertainty", torch.tensor([[0, 2, 1]]), embedding, ScoringConfig(), seeded()
    )
    assert forward.item() == pytest.approx(backward.item(), abs=1e-7)


def test_uncertainty_mask_changes_scores():
    # Without masking b is farther. With the second dimension masked out, b coincides
    # with the anchor.
    embeddings = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0]])
    triples = torch.tensor([[0, 1, 2]])
    config = ScoringConfig(scale=1.0)
    masked = ConditionalEmbedding(embeddings, mask=torch.tensor([1.0, 0.0]))

    score = score_triples("uncertainty", triples, masked, config, seeded())

    assert score.item() == pytest.approx(0.5 - abs(sigmoid(0.0 - 1.0) - 0.5), abs=1e-6)


def test_bald_hand_computed_ensemble():
    # Member 1: D(anchor, a) = 1, D(anchor, b) = 2. Member 2: D(anchor, a) = 3, D(anchor, b) = 1.
    ensemble = torch.tensor(
        [
            [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]],
            [[0.0, 0.0], [3.0, 0.0], [0.0, 1.0]],
        ]
    )
    embedding = ConditionalEmbedding(ensemble.mean(0), ensemble=ensemble)
    scale = 1.5

    score = score_triples(
        "bald", torch.tensor([[0, 1, 2]]), embedding, ScoringConfig(scale=scale), seeded()
    )

    first = sigmoid(scale * (2.0 - 1.0))
    second = sigmoid(scale * (1.0 - 3.0))
    expected = entropy((first + second) / 2) - (entropy(first) + entropy(second)) / 2
    assert score.item() == pytest.approx(expected, abs=1e-6)


def test_bald_ensemble_uses_mask():
    ensemble = torch.tensor(
        [
            [[0.0, 0.0], [1.0, 9.0], [0.0, 2.0]],
            [[0.0, 0.0], [3.0, 0.0], [0.0, 1.0]],
        ]
    )
    embedding = ConditionalEmbedding(ensemble[0], mask=torch.tensor([1.0, 0.5]), ensemble=ensemble)

    score = score_triples("bald", torch.tensor([[0, 1, 2]]), embedding, ScoringConfig(), seeded())

    first = sigmoid(1.0 - math.hypot(1.0, 4.5))
    second = sigmoid(0.5 - 3.0)
    expected = entropy((first + second) / 2) - (entropy(first) + entropy(second)) / 2
    assert score.item() == pytest.approx(expected, abs=1e-6)


def test_bald_zero_when_members_agree():
    generator = seeded(3)
    member = torch.randn(30, 4, generator=generator)
    embedding = ConditionalEmbedding(member, ensemble=member.expand(5, -1, -1))
    triples = torch.tensor([[0, 1, 2], [3, 4, 5], [10, 20, 29]])

    scores = score_triples("bald", triples, embedding, ScoringConfig(scale=3.0), generator)

    assert torch.allclose(scores, torch.zeros_like(scores), atol=1e-6)


def test_bald_dropout_default_is_seeded():
    embedding = ConditionalEmbedding(
        torch.randn(40, 8, generator=seeded(1)), mask=torch.rand(8, generator=seeded(2))
    )
    triples = torch.tensor([[0, 1, 2], [5, 6, 7], [9, 30, 39]])

    first = score_triples("bald", triples, embedding, ScoringConfig(), seeded(7))
    again = score_triples("bald", triples, embedding, ScoringConfig(), seeded(7))
    other = score_triples("bald", triples, embedding, ScoringConfig(), seeded(8))

    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert (first > 0).all()
    assert (first <= math.log(2) + 1e-6).all()


def test_random_scores_uniform_and_unrelated():
    generator = seeded(11)
    embedding = ConditionalEmbedding(
        torch.randn(500, 16, generator=generator), mask=torch.rand(16, generator=generator)
    )
    anchors = torch.randint(500, (20_000,), generator=generator)
    firsts = (anchors + 1 + torch.randint(499, (20_000,), generator=generator)) % 500
    seconds = (firsts + 1 + torch.randint(498, (20_000,), generator=generator)) % 500
    triples = torch.stack([anchors, firsts, seconds], dim=1)
    triples = triples[(triples[:, 2] != triples[:, 0])]

    random = score_triples("random", triples, embedding, ScoringConfig(), generator)
    uncertainty = score_triples("uncertainty", triples, embedding, ScoringConfig(), generator)

    correlation = torch.corrcoef(torch.stack([random, uncertainty]))[0, 1].item()
    deciles = torch.histc(random, bins=10, min=0.0, max=1.0) / random.numel()
    assert abs(correlation) < 0.05
    assert abs(random.mean().item() - 0.5) < 0.01
    assert deciles.min().item() > 0.08
    assert deciles.max().item() < 0.12


def test_scores_stay_on_input_device_and_dtype():
    embedding = ConditionalEmbedding(torch.randn(10, 3, dtype=torch.float64, generator=seeded()))
    triples = torch.tensor([[0, 1, 2], [3, 4, 5]])
    for name in STRATEGIES:
        scores = score_triples(name, triples, embedding, ScoringConfig(), seeded())
        assert scores.shape == (2,), name
        assert scores.device == embedding.device, name


def test_chunked_gaps_match_single_chunk():
    generator = seeded(5)
    embedding = ConditionalEmbedding(torch.randn(50, 6, generator=generator))
    triples = torch.randint(50, (1000, 3), generator=generator)

    whole = score_triples(
        "uncertainty", triples, embedding, ScoringConfig(chunk_size=10_000), generator
    )
    chunked = score_triples(
        "uncertainty", triples, embedding, ScoringConfig(chunk_size=7), generator
    )

    assert torch.equal(whole, chunked)
