"""Pool, scoring and selection together, and the throughput helper."""

import math

import torch

from training.active import (
    STRATEGIES,
    ConditionalEmbedding,
    PoolConfig,
    ScoringConfig,
    SelectionConfig,
    build_candidate_pool,
    score_throughput,
    score_triples,
    select_tasks,
)


def run_cycle(strategy: str, seed: int):
    generator = torch.Generator().manual_seed(seed)
    data = torch.Generator().manual_seed(100)
    embedding = ConditionalEmbedding(
        torch.randn(200, 8, generator=data), mask=torch.rand(8, generator=data)
    )
    unseen = torch.zeros(200, dtype=torch.bool)
    unseen[190:] = True

    pool = build_candidate_pool(
        embedding.masked(), PoolConfig(n_anchors=40), generator, unseen=unseen
    )
    scores = score_triples(strategy, pool, embedding, ScoringConfig(scale=2.0), generator)
    config = SelectionConfig(random_share=0.1, max_appearances_per_item=4)
    return select_tasks(pool, scores, 60, config, generator, must_cover=unseen)


def test_cycle_seeded_for_every_strategy():
    for name in STRATEGIES:
        first = run_cycle(name, seed=1)
        again = run_cycle(name, seed=1)
        other = run_cycle(name, seed=2)
        assert torch.equal(first.rows, again.rows), name
        assert not torch.equal(first.rows, other.rows), name


def test_cycle_covers_unseen_items():
    selection = run_cycle("uncertainty", seed=3)
    assert set(range(190, 200)) <= set(selection.rows.flatten().tolist())


def test_throughput_positive():
    rate = score_throughput(
        "uncertainty", n_items=100, d=8, n_candidates=1000, device="cpu", repeats=2
    )
    assert math.isfinite(rate)
    assert rate > 0
