"""The held-out split: fixed per question, independent of order and of other rows."""

import numpy as np
import pytest

from training.splits import HELD_OUT_SHARE, held_out_mask


def random_triplets(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    anchors = rng.integers(0, 10_000, count)
    closer = anchors + rng.integers(1, 5_000, count)
    farther = closer + rng.integers(1, 5_000, count)
    conditions = rng.integers(0, 4, count)
    return np.stack([anchors, closer, farther, conditions], axis=1).astype(np.int64)


def held_out_rows(triplets: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(row) for row in triplets[held_out_mask(triplets)].tolist()}


def test_split_ignores_insertion_order():
    triplets = random_triplets(5_000)
    shuffled = triplets[np.random.default_rng(1).permutation(len(triplets))]

    assert held_out_rows(shuffled) == held_out_rows(triplets)


def test_split_ignores_other_rows():
    triplets = random_triplets(5_000)

    assert np.array_equal(held_out_mask(triplets[:2_500]), held_out_mask(triplets)[:2_500])


def test_split_ignores_candidate_order():
    triplets = random_triplets(5_000)
    swapped = triplets[:, [0, 2, 1, 3]]

    assert np.array_equal(held_out_mask(swapped), held_out_mask(triplets))


def test_split_depends_on_condition():
    triplets = random_triplets(5_000)
    other_condition = triplets.copy()
    other_condition[:, 3] += 7

    assert not np.array_equal(held_out_mask(other_condition), held_out_mask(triplets))


def test_split_has_roughly_the_share():
    share = held_out_mask(random_triplets(20_000)).mean()

    assert abs(share - HELD_OUT_SHARE) < 0.01


def test_split_of_no_rows_is_empty():
    mask = held_out_mask(np.zeros((0, 4), dtype=np.int64))

    assert mask.shape == (0,)


@pytest.mark.parametrize("share", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_share_outside_unit_interval(share):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        held_out_mask(random_triplets(10), share=share)
