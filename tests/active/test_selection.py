"""select_tasks: exclusion of asked triples, the random share and the item limit."""

from collections import Counter

import pytest
import torch

from training.active import SelectionConfig, encode_triples, select_tasks


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def all_triples(n_items: int) -> torch.Tensor:
    """Every canonical triple over n_items items."""
    rows = [
        (anchor, a, b)
        for anchor in range(n_items)
        for a in range(n_items)
        for b in range(a + 1, n_items)
        if anchor not in (a, b)
    ]
    return torch.tensor(rows, dtype=torch.int64)


def test_selection_returns_top_scores():
    pool = all_triples(8)
    scores = torch.rand(pool.shape[0], generator=seeded(1))

    selection = select_tasks(pool, scores, 10, SelectionConfig(random_share=0.0), seeded())

    assert torch.equal(selection.scores, scores.topk(10).values)
    assert torch.equal(selection.rows, pool[selection.pool_indices])
    assert not bool(selection.is_random_share.any())


def test_asked_excluded_either_order():
    pool = all_triples(7)
    scores = torch.rand(pool.shape[0], generator=seeded(2))
    top = pool[scores.topk(40).indices].tolist()
    asked = {(anchor, b, a) for anchor, a, b in top[::2]} | {tuple(row) for row in top[1::2]}

    selection = select_tasks(
        pool, scores, 60, SelectionConfig(random_share=0.2), seeded(), asked=asked
    )

    asked_canonical = {(anchor, min(a, b), max(a, b)) for anchor, a, b in asked}
    chosen = {tuple(row) for row in selection.rows.tolist()}
    assert not chosen & asked_canonical
    assert selection.excluded_as_asked == 40
    assert selection.rows.shape[0] == 60


def test_asked_tensor_excluded():
    pool = all_triples(30)
    scores = torch.rand(pool.shape[0], generator=seeded(3))
    asked = pool[torch.randperm(pool.shape[0], generator=seeded(4))[:5000]]
    asked = asked[:, [0, 2, 1]]

    selection = select_tasks(pool, scores, 500, SelectionConfig(), seeded(), asked=asked)

    asked_keys = encode_triples(asked[:, [0, 2, 1]], 30)
    chosen_keys = encode_triples(selection.rows, 30)
    assert not bool(torch.isin(chosen_keys, asked_keys).any())
    assert selection.excluded_as_asked == 5000


def test_asked_outside_pool_ignored():
    pool = all_triples(5)
    asked = torch.tensor([[100, 200, 300], [0, 1, 2]])
    selection = select_tasks(
        pool, torch.ones(pool.shape[0]), 5, SelectionConfig(), seeded(), asked=asked
    )
    assert selection.excluded_as_asked == 1


def test_random_share_exact_count():
    pool = all_triples(12)
    scores = torch.rand(pool.shape[0], generator=seeded(5))

    selection = select_tasks(pool, scores, 50, SelectionConfig(random_share=0.1), seeded())

    assert int(selection.is_random_share.sum()) == 5
    assert selection.rows.shape[0] == 50


def test_random_share_from_whole_pool():
    pool = all_triples(12)
    scores = torch.linspace(1.0, 0.0, pool.shape[0])
    count = 100

    selection = select_tasks(pool, scores, count, SelectionConfig(random_share=0.5), seeded())

    random_positions = selection.pool_indices[selection.is_random_share]
    top_positions = selection.pool_indices[~selection.is_random_share]
    assert int((random_positions >= count).sum()) > 25
    assert int(top_positions.max()) < count
    assert float(random_positions.float().mean()) > pool.shape[0] / 4


def test_item_limit_respected():
    pool = all_triples(15)
    scores = torch.rand(pool.shape[0], generator=seeded(6))
    limit = 2

    selection = select_tasks(
        pool, scores, 200, SelectionConfig(max_appearances_per_item=limit), seeded()
    )

    appearances = Counter(selection.rows.flatten().tolist())
    assert max(appearances.values()) <= limit
    assert selection.dropped_by_item_limit > 0
    assert selection.rows.shape[0] <= 15 * limit // 3


def test_item_limit_applies_to_random_share():
    pool = all_triples(10)
    selection = select_tasks(
        pool,
        torch.zeros(pool.shape[0]),
        30,
        SelectionConfig(random_share=1.0, max_appearances_per_item=1),
        seeded(),
    )
    appearances = Counter(selection.rows.flatten().tolist())
    assert max(appearances.values()) == 1
    assert bool(selection.is_random_share.all())


def test_must_cover_items_selected():
    pool = all_triples(20)
    scores = torch.zeros(pool.shape[0])
    scores[pool[:, 0] < 5] = 1.0
    unseen = {17, 18, 19}

    selection = select_tasks(
        pool, scores, 10, SelectionConfig(random_share=0.0), seeded(), must_cover=unseen
    )

    assert unseen <= set(selection.rows.flatten().tolist())


def test_selection_seeded():
    pool = all_triples(12)
    scores = torch.rand(pool.shape[0], generator=seeded(7))
    config = SelectionConfig(random_share=0.3, max_appearances_per_item=6)

    first = select_tasks(pool, scores, 40, config, seeded(9))
    again = select_tasks(pool, scores, 40, config, seeded(9))
    other = select_tasks(pool, scores, 40, config, seeded(10))

    assert torch.equal(first.rows, again.rows)
    assert torch.equal(first.is_random_share, again.is_random_share)
    assert not torch.equal(first.rows, other.rows)


def test_pool_exhausted_returns_fewer():
    pool = all_triples(4)
    asked = pool[:3]
    selection = select_tasks(
        pool, torch.ones(pool.shape[0]), 100, SelectionConfig(), seeded(), asked=asked
    )
    assert selection.rows.shape[0] == pool.shape[0] - 3
    assert selection.pool_size == pool.shape[0]


def test_duplicate_pool_rows_selected_once():
    pool = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [0, 1, 2]])
    selection = select_tasks(
        pool, torch.tensor([1.0, 0.9, 0.5, 0.8]), 4, SelectionConfig(random_share=0.0), seeded()
    )
    assert selection.rows.tolist() == [[0, 1, 2], [1, 0, 2]]
    assert selection.pool_size == 2


def test_selection_rejects_bad_input():
    pool = all_triples(4)
    with pytest.raises(ValueError, match="scores"):
        select_tasks(pool, torch.ones(3), 2, SelectionConfig(), seeded())
    with pytest.raises(ValueError, match="random_share"):
        SelectionConfig(random_share=1.5)
    with pytest.raises(ValueError, match="shape"):
        select_tasks(pool[:, :2], torch.ones(pool.shape[0]), 2, SelectionConfig(), seeded())


def first_pick_share(scores: list[float], power: float, trials: int = 4000) -> float:
    """Share of seeds for which power sampling picks row 1 first from a two-row pool."""
    pool = torch.tensor([[0, 1, 2], [0, 1, 3]], dtype=torch.int64)
    config = SelectionConfig(random_share=0.0, power=power)
    picks = [
        int(select_tasks(pool, torch.tensor(scores), 1, config, seeded(seed)).pool_indices[0])
        for seed in range(trials)
    ]
    return sum(picks) / trials


@pytest.mark.parametrize(("power", "expected"), [(1.0, 0.75), (2.0, 0.9)])
def test_power_sampling_draws_in_proportion_to_score_power(power, expected):
    # Row 1 has score 3 and row 0 score 1: P(row 1 first) = 3**p / (1 + 3**p).
    assert first_pick_share([1.0, 3.0], power) == pytest.approx(expected, abs=0.025)


def test_power_sampling_takes_zero_scores_last():
    pool = all_triples(8)
    scores = torch.zeros(pool.shape[0])
    positive = torch.randperm(pool.shape[0], generator=seeded(5))[:30]
    scores[positive] = torch.rand(30, generator=seeded(6)) + 0.01

    selection = select_tasks(pool, scores, 30, SelectionConfig(random_share=0.0, power=1.0), seeded())

    assert set(selection.pool_indices.tolist()) == set(positive.tolist())


def test_power_sampling_spreads_the_batch():
    pool = all_triples(10)
    scores = torch.rand(pool.shape[0], generator=seeded(7))
    top = set(scores.topk(50).indices.tolist())

    greedy = select_tasks(pool, scores, 50, SelectionConfig(random_share=0.0), seeded())
    sampled = select_tasks(pool, scores, 50, SelectionConfig(random_share=0.0, power=1.0), seeded())

    assert set(greedy.pool_indices.tolist()) == top
    assert len(set(sampled.pool_indices.tolist()) - top) > 10
    assert sampled.scores.mean() > scores.mean()


def test_power_sampling_repeats_with_the_seed():
    pool = all_triples(9)
    scores = torch.rand(pool.shape[0], generator=seeded(8))
    config = SelectionConfig(random_share=0.1, power=2.0)

    first = select_tasks(pool, scores, 40, config, seeded(3))
    again = select_tasks(pool, scores, 40, config, seeded(3))
    other = select_tasks(pool, scores, 40, config, seeded(4))

    assert torch.equal(first.rows, again.rows)
    assert not torch.equal(first.rows, other.rows)


def test_power_sampling_rejects_negative_scores():
    pool = all_triples(5)
    scores = torch.linspace(-1, 1, pool.shape[0])

    with pytest.raises(ValueError, match="non-negative scores"):
        select_tasks(pool, scores, 5, SelectionConfig(power=1.0), seeded())


@pytest.mark.parametrize("power", [0.0, -1.0])
def test_power_must_be_positive(power):
    with pytest.raises(ValueError, match="power must be positive"):
        SelectionConfig(power=power)
