"""Seed the task queue with random triplet tasks, the cold start before any model exists.

A task asks which of two candidates is closer to an anchor. Anchors are drawn uniformly from
the dataset's items and the candidate pair uniformly from the other items. Candidates are
stored in canonical order (candidate_a_id < candidate_b_id), and a (condition, anchor, {a, b})
triple that already has a task is never drawn again.
"""

import logging
from dataclasses import dataclass

import numpy as np
from django.db import transaction

from annotation.models import Condition, Dataset, Item, TripletTask

logger = logging.getLogger(__name__)

# Up to this many possible triples per condition, all of them are listed and sampled without
# replacement; above it, random draws are repeated until enough new triples are found.
ENUMERATION_LIMIT = 5_000_000
INSERT_BATCH_SIZE = 5000


@dataclass
class SeedResult:
    condition: Condition
    requested: int
    available: int
    created: int


def possible_triples(item_count: int) -> int:
    """Return how many (anchor, {a, b}) triples `item_count` items give."""
    return item_count * (item_count - 1) * (item_count - 2) // 2


def enumerate_triples(item_count: int) -> np.ndarray:
    """Return every (anchor, a, b) index triple with a < b and anchor not in {a, b}, one a row."""
    first, second = np.triu_indices(item_count, k=1)
    anchors = np.repeat(np.arange(item_count), len(first))
    pairs_a = np.tile(first, item_count)
    pairs_b = np.tile(second, item_count)
    keep = (anchors != pairs_a) & (anchors != pairs_b)
    return np.stack([anchors[keep], pairs_a[keep], pairs_b[keep]], axis=1)


def triple_keys(triples: np.ndarray, item_count: int) -> np.ndarray:
    """Encode (anchor, a, b) index rows as single integers, for fast membership tests."""
    triples = triples.astype(np.int64)
    return (triples[:, 0] * item_count + triples[:, 1]) * item_count + triples[:, 2]


def draw_triples(rng: np.random.Generator, item_count: int, size: int) -> np.ndarray:
    """Draw `size` (anchor, a, b) index triples: uniform anchor, uniform pair of two other items."""
    anchors = rng.integers(0, item_count, size)
    first = rng.integers(0, item_count - 1, size)
    first += first >= anchors
    second = rng.integers(0, item_count - 2, size)
    low = np.minimum(anchors, first)
    high = np.maximum(anchors, first)
    second += second >= low
    second += second >= high
    return np.stack([anchors, np.minimum(first, second), np.maximum(first, second)], axis=1)


def sample_new_triples(
    *, rng: np.random.Generator, item_count: int, count: int, existing: set[tuple[int, int, int]]
) -> list[tuple[int, int, int]]:
    """Return up to `count` distinct index triples that are not in `existing`, in drawn order."""
    if possible_triples(item_count) <= ENUMERATION_LIMIT:
        triples = enumerate_triples(item_count)
        if existing:
            existing_keys = triple_keys(np.array(sorted(existing), dtype=np.int64), item_count)
            triples = triples[~np.isin(triple_keys(triples, item_count), existing_keys)]
        if len(triples) <= count:
            chosen = rng.permutation(len(triples))
        else:
            chosen = rng.choice(len(triples), size=count, replace=False)
        return [tuple(row) for row in triples[chosen].tolist()]

    chosen: list[tuple[int, int, int]] = []
    seen = set(existing)
    # With over ENUMERATION_LIMIT possible triples a draw is rarely a repeat, so a few rounds
    # suffice unless nearly every triple already has a task.
    for _ in range(100):
        for row in draw_triples(rng, item_count, 2 * (count - len(chosen)) + 16).tolist():
            triple = tuple(row)
            if triple in seen:
                continue
            seen.add(triple)
            chosen.append(triple)
            if len(chosen) == count:
                return chosen
    return chosen


def seed_condition(
    *,
    condition: Condition,
    item_ids: list[int],
    count: int,
    rng: np.random.Generator,
    answers_wanted: int,
    priority: float,
) -> SeedResult:
    """Create up to `count` new random tasks for one condition."""
    item_count = len(item_ids)
    index_of = {item_id: index for index, item_id in enumerate(item_ids)}
    existing = {
        (index_of[anchor], index_of[first], index_of[second])
        for anchor, first, second in TripletTask.objects.filter(condition=condition).values_list(
            "anchor_id", "candidate_a_id", "candidate_b_id"
        )
        if anchor in index_of and first in index_of and second in index_of
    }
    available = possible_triples(item_count) - len(existing) if item_count >= 3 else 0
    result = SeedResult(condition=condition, requested=count, available=available, created=0)
    if available <= 0 or count <= 0:
        return result

    triples = sample_new_triples(rng=rng, item_count=item_count, count=min(count, available), existing=existing)
    # item_ids is sorted, so index order is id order and (a, b) with a < b is canonical.
    tasks = [
        TripletTask(
            dataset_id=condition.dataset_id,
            condition=condition,
            anchor_id=item_ids[anchor],
            candidate_a_id=item_ids[first],
            candidate_b_id=item_ids[second],
            origin=TripletTask.Origin.RANDOM,
            answers_wanted=answers_wanted,
            priority=priority,
        )
        for anchor, first, second in triples
    ]
    TripletTask.objects.bulk_create(tasks, batch_size=INSERT_BATCH_SIZE)
    result.created = len(tasks)
    logger.info("seeded %d random tasks for %s (%d requested)", result.created, condition, count)
    return result


def seed_random_tasks(
    *,
    dataset: Dataset,
    conditions: list[Condition] | None = None,
    count: int,
    seed: int | None = None,
    answers_wanted: int = 1,
    priority: float = 0.0,
) -> list[SeedResult]:
    """Create `count` random tasks for each of `conditions` (default: the dataset's active ones).

    Results report fewer created tasks than requested when the dataset has fewer new triples
    left. The same seed and database state give the same tasks. Everything is inserted in one
    transaction.
    """
    if count < 0:
        raise ValueError(f"count must be at least 0, got {count}")
    if answers_wanted < 1:
        raise ValueError(f"answers_wanted must be at least 1, got {answers_wanted}")
    if conditions is None:
        conditions = list(Condition.objects.filter(dataset=dataset, is_active=True).order_by("index"))

    rng = np.random.default_rng(seed)
    item_ids = sorted(Item.objects.filter(dataset=dataset).values_list("id", flat=True))
    results = []
    with transaction.atomic():
        for condition in conditions:
            results.append(
                seed_condition(
                    condition=condition,
                    item_ids=item_ids,
                    count=count,
                    rng=rng,
                    answers_wanted=answers_wanted,
                    priority=priority,
                )
            )
    return results
