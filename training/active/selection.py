"""Choose the triples to ask next from a scored pool.

The selection runs in three greedy passes over the pool rows that were not asked before
under the condition:

1. the random share: round(count * random_share) rows in uniform random order over the
   whole remaining pool, flagged `is_random_share`, so their answers give an unbiased
   sample for evaluation;
2. coverage: if `must_cover` items are given (items without judgements), the best-scoring
   row containing each still uncovered item;
3. the rest by descending score or, with `power` set, in a random order that draws each
   row with probability proportional to score ** power (power acquisition). A batch taken
   strictly by score piles up similar questions about the same ambiguous items. The random
   order still prefers high scores, but spreads the batch over more items.

Every pass skips a row once one of its items has reached `max_appearances_per_item`.
"""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from training.active.triples import (
    ItemSet,
    as_triple_tensor,
    canonical_order,
    check_triples,
    encode_triples,
    key_base,
    permutation,
    uniform,
)

logger = logging.getLogger(__name__)

# Rows are copied to Python in blocks of this size, so a small selection from a large pool
# never converts the whole pool.
_SCAN_BLOCK = 4096


@dataclass(frozen=True)
class SelectionConfig:
    """Share of randomly drawn triples, per-item appearance limit and ordering of the rest.

    `max_appearances_per_item` None means no limit. With `power` None the rest is taken in
    descending score order. A positive `power` draws it with probability proportional to
    score ** power, and the scores must then be non-negative. The larger the power, the
    closer the draw comes to the strict order.
    """

    random_share: float = 0.1
    max_appearances_per_item: int | None = None
    power: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.random_share <= 1:
            raise ValueError(f"random_share must lie in [0, 1], got {self.random_share}")
        if self.max_appearances_per_item is not None and self.max_appearances_per_item < 1:
            raise ValueError(
                f"max_appearances_per_item must be positive, got {self.max_appearances_per_item}"
            )
        if self.power is not None and not self.power > 0:
            raise ValueError(f"power must be positive, or None for the top scores, got {self.power}")


@dataclass(frozen=True)
class Selection:
    """Selected triples and the counts behind them.

    `rows` (S, 3) contains canonical (anchor, a, b) triples, `scores` (S,) their pool scores,
    `pool_indices` (S,) their positions in the pool, and `is_random_share` (S,) marks the
    uniformly drawn evaluation rows. `pool_size` counts the distinct pool rows,
    `excluded_as_asked` those dropped because they were asked before, and
    `dropped_by_item_limit` the distinct rows that a pass skipped because one of their
    items had reached the limit.
    """

    rows: Tensor
    scores: Tensor
    pool_indices: Tensor
    is_random_share: Tensor
    pool_size: int
    excluded_as_asked: int
    dropped_by_item_limit: int


class _LazyRows:
    """Row lookup into a large pool that copies each block to Python on first use."""

    def __init__(self, pool: Tensor) -> None:
        self.pool = pool
        self.blocks: dict[int, list[list[int]]] = {}

    def __getitem__(self, index: int) -> list[int]:
        block = index // _SCAN_BLOCK
        if block not in self.blocks:
            self.blocks[block] = self.pool[block * _SCAN_BLOCK : (block + 1) * _SCAN_BLOCK].tolist()
        return self.blocks[block][index % _SCAN_BLOCK]


class _Picker:
    """Greedy state shared by the passes: picked rows and per-item appearance counts."""

    def __init__(self, rows: _LazyRows, count: int, limit: int | None) -> None:
        self.rows = rows
        self.count = count
        self.limit = limit
        self.appearances: dict[int, int] = {}
        self.picked: list[int] = []
        self.picked_set: set[int] = set()
        self.dropped_by_limit: set[int] = set()

    def is_full(self) -> bool:
        return len(self.picked) >= self.count

    def try_pick(self, index: int) -> bool:
        if index in self.picked_set:
            return False
        items = self.rows[index]
        if self.limit is not None and any(
            self.appearances.get(item, 0) >= self.limit for item in items
        ):
            self.dropped_by_limit.add(index)
            return False

        for item in items:
            self.appearances[item] = self.appearances.get(item, 0) + 1
        self.picked.append(index)
        self.picked_set.add(index)
        return True


def select_tasks(
    pool: Tensor,
    scores: Tensor,
    count: int,
    config: SelectionConfig,
    generator: torch.Generator,
    asked: Tensor | Iterable[tuple[int, int, int]] | None = None,
    must_cover: ItemSet | None = None,
) -> Selection:
    """Select up to `count` triples from the (M, 3) `pool` with (M,) `scores`.

    `asked` contains the (anchor, a, b) triples already asked under the condition, as an int64
    (R, 3) tensor or an iterable of tuples, in either candidate order. `must_cover` is a
    boolean item mask or a set of item positions to include at least once where the pool
    and the limit allow. Fewer than `count` rows come back when the pool runs out.
    """
    check_triples(pool)
    if scores.shape != (pool.shape[0],):
        raise ValueError(f"scores must have shape ({pool.shape[0]},), got {tuple(scores.shape)}")
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")

    pool = canonical_order(pool.to(torch.int64))
    distinct = _first_occurrences(pool)
    eligible = distinct[~_already_asked(pool[distinct], asked)]
    excluded = distinct.numel() - eligible.numel()

    picker = _Picker(_LazyRows(pool), count, config.max_appearances_per_item)
    n_random = min(round(count * config.random_share), count)
    random_order = eligible[permutation(eligible.numel(), generator, pool.device)]
    _fill(picker, _indices(random_order), n_random)
    n_flagged = len(picker.picked)

    by_score = eligible[_score_order(scores[eligible], config.power, generator)]
    if must_cover is not None:
        _cover_items(picker, by_score, _as_item_set(must_cover))
    _fill(picker, _indices(by_score), count)

    return _build_selection(pool, scores, picker, n_flagged, distinct.numel(), excluded)


def _score_order(scores: Tensor, power: float | None, generator: torch.Generator) -> Tensor:
    """Return the order of `scores` to pick in: descending, or sampled by score ** power.

    Sampling without replacement in proportion to weights w equals sorting
    log(w) + Gumbel noise in descending order (the Gumbel-top-k trick). Rows of zero
    score come last, in random order.
    """
    if power is None:
        return torch.argsort(scores, descending=True, stable=True)
    if scores.numel() and scores.min() < 0:
        raise ValueError(
            f"power sampling needs non-negative scores, got minimum {float(scores.min())}; "
            "use a strategy with non-negative scores or set power to None"
        )

    noise = -torch.log(-torch.log(uniform(tuple(scores.shape), generator, scores.device).clamp(min=1e-12)))
    keys = power * torch.log(scores.double()) + noise.double()
    fallback = noise.double() - 1e9
    return torch.argsort(torch.where(scores > 0, keys, fallback), descending=True, stable=True)


def _first_occurrences(pool: Tensor) -> Tensor:
    """Return the positions of the first occurrence of each distinct row, in pool order."""
    if pool.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=pool.device)
    keys = encode_triples(pool, key_base(pool))
    _, inverse = torch.unique(keys, return_inverse=True)
    positions = torch.arange(pool.shape[0], device=pool.device)
    first = torch.full(
        (int(inverse.max()) + 1,), pool.shape[0], dtype=torch.int64, device=pool.device
    )
    first.scatter_reduce_(0, inverse, positions, reduce="amin")
    return torch.sort(first).values


def _already_asked(rows: Tensor, asked: Tensor | Iterable[tuple[int, int, int]] | None) -> Tensor:
    """Return a mask over `rows`, true where a row is in `asked` in either candidate order."""
    if asked is None:
        return torch.zeros(rows.shape[0], dtype=torch.bool, device=rows.device)
    asked_rows = canonical_order(as_triple_tensor(asked, rows.device))
    if asked_rows.shape[0] == 0 or rows.shape[0] == 0:
        return torch.zeros(rows.shape[0], dtype=torch.bool, device=rows.device)
    if asked_rows.min() < 0:
        raise ValueError("asked triples contain negative item positions")

    base = key_base(rows, asked_rows)
    return torch.isin(encode_triples(rows, base), encode_triples(asked_rows, base))


def _indices(order: Tensor) -> Iterator[int]:
    for start in range(0, order.numel(), _SCAN_BLOCK):
        yield from order[start : start + _SCAN_BLOCK].tolist()


def _fill(picker: _Picker, order: Iterator[int], total: int) -> None:
    """Pick rows in `order` until `total` rows are picked or the order runs out."""
    if len(picker.picked) >= total:
        return
    for index in order:
        picker.try_pick(index)
        if len(picker.picked) >= total:
            return


def _cover_items(picker: _Picker, by_score: Tensor, must_cover: set[int]) -> None:
    """Pick the best-scoring row for each must-cover item that no picked row contains yet."""
    uncovered = must_cover - set(picker.appearances)
    for index in _indices(by_score):
        if not uncovered or picker.is_full():
            return
        row_items = set(picker.rows[index])
        if row_items & uncovered and picker.try_pick(index):
            uncovered -= row_items
    if uncovered:
        logger.warning("%d items to cover have no selectable triple in the pool", len(uncovered))


def _as_item_set(items: ItemSet) -> set[int]:
    if isinstance(items, Tensor) and items.dtype == torch.bool:
        return set(torch.nonzero(items).flatten().tolist())
    if isinstance(items, Tensor):
        return set(items.reshape(-1).tolist())
    return {int(item) for item in items}


def _build_selection(
    pool: Tensor, scores: Tensor, picker: _Picker, n_flagged: int, pool_size: int, excluded: int
) -> Selection:
    indices = torch.tensor(picker.picked, dtype=torch.int64, device=pool.device)
    is_random_share = torch.arange(indices.numel(), device=pool.device) < n_flagged
    logger.info(
        "selected %d of %d triples (%d random share), excluded %d as already asked, "
        "skipped %d at the item limit",
        indices.numel(),
        pool_size,
        n_flagged,
        excluded,
        len(picker.dropped_by_limit),
    )
    return Selection(
        rows=pool[indices],
        scores=scores[indices],
        pool_indices=indices,
        is_random_share=is_random_share,
        pool_size=pool_size,
        excluded_as_asked=excluded,
        dropped_by_item_limit=len(picker.dropped_by_limit),
    )
