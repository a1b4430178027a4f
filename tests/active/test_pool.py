"""Candidate pools: shape of the triples, neighbour sources and unseen items."""

import torch

from training.active import PoolConfig, build_candidate_pool, encode_triples, is_degenerate


def line_points(n_items: int) -> torch.Tensor:
    """Items on a line at x = i**1.5, so every item has distinct distances to the others."""
    return (torch.arange(n_items, dtype=torch.float32) ** 1.5).unsqueeze(1)


def random_points(n_items: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n_items, 4, generator=torch.Generator().manual_seed(seed))


def build(points, config=PoolConfig(), seed=0, **kwargs) -> torch.Tensor:
    return build_candidate_pool(points, config, torch.Generator().manual_seed(seed), **kwargs)


def items_in(pool: torch.Tensor) -> set[int]:
    return set(pool.flatten().tolist())


def test_pool_rows_canonical():
    pool = build(random_points(60), PoolConfig(n_anchors=20, candidates_per_anchor=6))
    assert pool.dtype == torch.int64
    assert pool.shape[0] > 0
    assert bool((pool[:, 1] < pool[:, 2]).all())


def test_pool_has_no_degenerate_rows():
    pool = build(random_points(60), PoolConfig(n_anchors=20, candidates_per_anchor=6))
    assert not bool(is_degenerate(pool).any())


def test_pool_rows_unique():
    pool = build(random_points(60), PoolConfig(candidates_per_anchor=6), unseen=range(60))
    keys = encode_triples(pool, 60)
    assert torch.unique(keys).numel() == pool.shape[0]


def test_pool_pairs_every_candidate():
    # Each of the 10 anchors gets 5 distinct candidates, so 5 * 4 / 2 = 10 triples.
    pool = build(random_points(40), PoolConfig(n_anchors=10, candidates_per_anchor=5))
    assert pool.shape[0] == 10 * 10
    assert torch.unique(pool[:, 0]).numel() == 10


def test_pool_three_items():
    # With three items each anchor has only the two others as candidates: one triple each.
    pool = build(random_points(3), PoolConfig(candidates_per_anchor=8))
    assert pool.tolist() == [[0, 1, 2], [1, 0, 2], [2, 0, 1]]


def test_near_candidates_are_nearest():
    points = line_points(30)
    k = 3
    config = PoolConfig(
        candidates_per_anchor=3, near_share=1.0, far_share=0.0, uniform_share=0.0, n_neighbours=k
    )

    pool = build(points, config)

    distances = torch.cdist(points, points)
    distances.fill_diagonal_(float("inf"))
    nearest = distances.topk(k, dim=1, largest=False).indices
    for anchor, a, b in pool.tolist():
        allowed = set(nearest[anchor].tolist())
        assert a in allowed, (anchor, a)
        assert b in allowed, (anchor, b)


def test_far_candidates_are_farthest():
    points = line_points(30)
    k = 4
    config = PoolConfig(
        candidates_per_anchor=2, near_share=0.0, far_share=1.0, uniform_share=0.0, n_neighbours=k
    )

    pool = build(points, config)

    farthest = torch.cdist(points, points).topk(k, dim=1).indices
    for anchor, a, b in pool.tolist():
        allowed = set(farthest[anchor].tolist())
        assert a in allowed, (anchor, a)
        assert b in allowed, (anchor, b)


def test_short_neighbour_lists_filled_uniformly():
    # The near share requests 6 candidates but the list contains 2, so uniform draws fill the rest.
    config = PoolConfig(
        candidates_per_anchor=6, near_share=1.0, far_share=0.0, uniform_share=0.0, n_neighbours=2
    )
    pool = build(random_points(30), config)
    assert pool.shape[0] == 30 * 15


def test_pool_respects_anchor_subset():
    anchors = set(range(5, 15))
    pool = build(random_points(50), PoolConfig(candidates_per_anchor=4), anchor_items=anchors)
    assert set(pool[:, 0].tolist()) == anchors


def test_unseen_anchor_candidates_included():
    unseen = {7, 13, 42}
    pool = build(random_points(50), PoolConfig(n_anchors=3, candidates_per_anchor=4), unseen=unseen)
    assert unseen <= set(pool[:, 0].tolist())


def test_unseen_outside_anchor_subset_included():
    unseen = torch.zeros(50, dtype=torch.bool)
    unseen[[30, 45, 49]] = True
    anchors = range(0, 10)

    pool = build(
        random_points(50),
        PoolConfig(n_anchors=4, candidates_per_anchor=3),
        anchor_items=anchors,
        unseen=unseen,
    )

    assert {30, 45, 49} <= items_in(pool)
    assert set(pool[:, 0].tolist()) <= set(anchors)
    assert not bool(is_degenerate(pool).any())


def test_every_unseen_item_in_small_pool():
    # Far more unseen items than anchors or candidates would reach by chance.
    unseen = set(range(0, 200, 3))
    pool = build(
        random_points(200),
        PoolConfig(n_anchors=2, candidates_per_anchor=2),
        anchor_items=range(100),
        unseen=unseen,
    )
    assert unseen <= items_in(pool)


def test_pool_seeded():
    config = PoolConfig(n_anchors=15, candidates_per_anchor=5)
    points = random_points(80)
    first = build(points, config, seed=4)
    again = build(points, config, seed=4)
    other = build(points, config, seed=5)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_pool_chunking_keeps_shape():
    config = PoolConfig(n_anchors=30, candidates_per_anchor=4, chunk_elements=100)
    pool = build(random_points(70), config)
    assert pool.shape[0] == 30 * 6
