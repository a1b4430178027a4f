"""The held-out split of a dataset's triplets, fixed across training runs.

A triplet is held out when a hash of its question (condition, anchor and the unordered
pair of candidates) falls in the held-out share. The split depends on nothing but the
question, so it never changes as triplets arrive, every model version of a dataset is
scored on the same questions, and two answers to one question never straddle the split.
"""

import numpy as np

HELD_OUT_SHARE = 0.1

_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * _MIX_1
        z = (z ^ (z >> np.uint64(27))) * _MIX_2
        return z ^ (z >> np.uint64(31))


def question_hash(triplets: np.ndarray) -> np.ndarray:
    """Hash rows of (anchor, closer, farther, condition row) by question, ignoring candidate order."""
    triplets = np.asarray(triplets, dtype=np.int64).astype(np.uint64)
    low = np.minimum(triplets[:, 1], triplets[:, 2])
    high = np.maximum(triplets[:, 1], triplets[:, 2])

    state = _splitmix64(triplets[:, 3])
    for column in (triplets[:, 0], low, high):
        state = _splitmix64(state ^ column)
    return state


def held_out_mask(triplets: np.ndarray, share: float = HELD_OUT_SHARE) -> np.ndarray:
    """Return a boolean mask of the rows that belong to the held-out split."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"held-out share must lie strictly between 0 and 1, got {share}")
    if len(triplets) == 0:
        return np.zeros(0, dtype=bool)

    buckets = question_hash(triplets) % np.uint64(1_000_000)
    return buckets < np.uint64(round(share * 1_000_000))
