"""Triplets sampled from item attributes, the way labelled datasets were turned into triplets.

For a categorical attribute the anchor and the closer item share a value and the farther
item has another. For a numeric attribute the closer item's value is nearer the anchor's
than the farther item's by at least `min_gap`. Items without a value are never sampled.
"""

from collections.abc import Sequence

import numpy as np

MISSING_VALUES = (None, "", "unknown")


def _usable(values: Sequence) -> np.ndarray:
    return np.array([value not in MISSING_VALUES for value in values], dtype=bool)


def sample_categorical(values: Sequence, count: int, rng: np.random.Generator) -> np.ndarray:
    """Return `count` rows of (anchor, closer, farther) positions into `values`."""
    usable = np.flatnonzero(_usable(values))
    labels = np.array([str(values[index]) for index in usable])
    groups = {label: usable[labels == label] for label in np.unique(labels)}
    anchors_pool = np.concatenate([members for members in groups.values() if len(members) >= 2] or [np.array([], int)])
    if len(anchors_pool) == 0 or len(groups) < 2:
        raise ValueError("a categorical attribute needs two values, one of them on at least two items")

    rows = np.empty((count, 3), dtype=np.int64)
    for row in range(count):
        anchor = int(rng.choice(anchors_pool))
        label = str(values[anchor])
        same = groups[label]
        closer = int(rng.choice(same[same != anchor]))
        others = usable[labels != label]
        rows[row] = (anchor, closer, int(rng.choice(others)))
    return rows


def sample_numeric(values: Sequence, count: int, rng: np.random.Generator, min_gap: float | None = None) -> np.ndarray:
    """Return `count` rows of (anchor, closer, farther) positions, decided by distance in value."""
    usable = np.flatnonzero(_usable(values))
    numbers = np.array([float(values[index]) for index in usable])
    if len(usable) < 3 or numbers.std() == 0:
        raise ValueError("a numeric attribute needs at least three items and two distinct values")
    gap = 0.1 * numbers.std() if min_gap is None else min_gap

    rows: list[tuple[int, int, int]] = []
    attempts = 0
    while len(rows) < count:
        attempts += 1
        if attempts > 100 * count:
            raise ValueError(f"found only {len(rows)} of {count} triplets with a value gap of at least {gap}")
        anchor, first, second = rng.choice(len(usable), 3, replace=False)
        first_distance = abs(numbers[first] - numbers[anchor])
        second_distance = abs(numbers[second] - numbers[anchor])
        if abs(first_distance - second_distance) < gap:
            continue
        closer, farther = (first, second) if first_distance < second_distance else (second, first)
        rows.append((int(usable[anchor]), int(usable[closer]), int(usable[farther])))
    return np.array(rows, dtype=np.int64)


def is_numeric(values: Sequence) -> bool:
    present = [value for value in values if value not in MISSING_VALUES]
    return bool(present) and all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in present
    )
