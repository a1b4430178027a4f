"""Candidate pool: the triples around sampled anchors that the strategies score.

For each anchor, `candidates_per_anchor` distinct items are drawn from three sources under
the conditional (masked) distance: near neighbours (a random subset of the k nearest),
far neighbours (a random subset of the k farthest) and uniform draws from the rest. Every
pair of an anchor's candidates becomes one triple (anchor, a, b) with a < b.

Items without judgements ("unseen") always reach the pool. An unseen item that may be an
anchor is added to the anchors. Any other unseen item gets `triples_per_unseen` forced
triples as a candidate, with a uniform anchor and a uniform second candidate.
"""

import logging
from dataclasses import dataclass

import torch
from torch import Tensor

from training.active.triples import (
    ItemSet,
    as_item_mask,
    canonical_order,
    is_degenerate,
    permutation,
    skip_two_items,
    uniform,
    unique_triples,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolConfig:
    """Size and mix of the candidate pool.

    `n_anchors` anchors are drawn uniformly without replacement from the allowed anchors
    (all of them when None). The three shares set the mix of near, far and uniform
    candidates and are normalised to sum to 1. `n_neighbours` is k, the length of both
    the nearest and the farthest neighbour lists. `chunk_elements` caps the size of the
    anchors x items distance block held in memory at once.
    """

    n_anchors: int | None = None
    candidates_per_anchor: int = 8
    near_share: float = 0.5
    far_share: float = 0.25
    uniform_share: float = 0.25
    n_neighbours: int = 20
    triples_per_unseen: int = 4
    chunk_elements: int = 1 << 24

    def __post_init__(self) -> None:
        shares = (self.near_share, self.far_share, self.uniform_share)
        if min(shares) < 0 or sum(shares) <= 0:
            raise ValueError(
                f"candidate shares must be non-negative with a positive sum, got {shares}"
            )
        if self.candidates_per_anchor < 2:
            raise ValueError(
                f"candidates_per_anchor must be at least 2, got {self.candidates_per_anchor}"
            )
        if self.n_anchors is not None and self.n_anchors < 0:
            raise ValueError(f"n_anchors must be non-negative, got {self.n_anchors}")
        if self.n_neighbours < 1 or self.triples_per_unseen < 1 or self.chunk_elements < 1:
            raise ValueError("n_neighbours, triples_per_unseen and chunk_elements must be positive")

    def source_counts(self) -> tuple[int, int]:
        """Return how many of an anchor's candidates come from near and from far neighbours."""
        total = self.near_share + self.far_share + self.uniform_share
        n_near = round(self.candidates_per_anchor * self.near_share / total)
        n_far = round(self.candidates_per_anchor * self.far_share / total)
        return n_near, min(n_far, self.candidates_per_anchor - n_near)


def build_candidate_pool(
    points: Tensor,
    config: PoolConfig,
    generator: torch.Generator,
    anchor_items: ItemSet | None = None,
    unseen: ItemSet | None = None,
) -> Tensor:
    """Build the deduplicated (M, 3) int64 pool of canonical triples around sampled anchors.

    `points` is the (N, d) masked embedding of one condition (`ConditionalEmbedding.masked()`).
    `anchor_items` and `unseen` are each a boolean (N,) mask, a tensor of item positions or
    an iterable of positions. Every unseen item appears in at least one returned triple.
    """
    n_items = points.shape[0]
    if n_items < 3:
        raise ValueError(f"a triple needs three distinct items, got {n_items}")
    device = points.device

    allowed = torch.ones(n_items, dtype=torch.bool, device=device)
    if anchor_items is not None:
        allowed = as_item_mask(anchor_items, n_items, device)
    unseen_mask = as_item_mask(unseen, n_items, device)
    anchors = _sample_anchors(allowed, unseen_mask, config.n_anchors, generator)

    around_anchors = _triples_around_anchors(points, anchors, config, generator)
    forced = _forced_unseen_triples(
        unseen_mask & ~allowed, allowed, config.triples_per_unseen, generator
    )

    pool = unique_triples(canonical_order(torch.cat([around_anchors, forced])))
    logger.info(
        "built a pool of %d triples around %d anchors, with %d forced triples for unseen items",
        pool.shape[0],
        anchors.numel(),
        forced.shape[0],
    )
    return pool


def _sample_anchors(
    allowed: Tensor, unseen: Tensor, n_anchors: int | None, generator: torch.Generator
) -> Tensor:
    """Draw `n_anchors` allowed items uniformly, then add every allowed unseen item."""
    candidates = torch.nonzero(allowed).flatten()
    if candidates.numel() == 0:
        raise ValueError("no item is allowed as an anchor")
    if n_anchors is not None and n_anchors < candidates.numel():
        candidates = candidates[
            permutation(candidates.numel(), generator, allowed.device)[:n_anchors]
        ]

    unseen_anchors = torch.nonzero(allowed & unseen).flatten()
    return torch.unique(torch.cat([candidates, unseen_anchors]))


def _triples_around_anchors(
    points: Tensor, anchors: Tensor, config: PoolConfig, generator: torch.Generator
) -> Tensor:
    n_items = points.shape[0]
    chunk = max(1, config.chunk_elements // n_items)
    parts = []
    for start in range(0, anchors.numel(), chunk):
        chunk_anchors = anchors[start : start + chunk]
        candidates = _draw_candidates(points, chunk_anchors, config, generator)
        parts.append(_pair_candidates(chunk_anchors, candidates))
    return (
        torch.cat(parts) if parts else torch.empty((0, 3), dtype=torch.int64, device=points.device)
    )


def _draw_candidates(
    points: Tensor, anchors: Tensor, config: PoolConfig, generator: torch.Generator
) -> Tensor:
    """Return (A, C) distinct candidate positions per anchor, -1 where too few items exist."""
    distances = torch.cdist(points[anchors], points)
    rows = torch.arange(anchors.numel(), device=points.device)
    unavailable = torch.zeros_like(distances, dtype=torch.bool)
    unavailable[rows, anchors] = True
    n_near, n_far = config.source_counts()
    k = min(config.n_neighbours, points.shape[0])

    near = _pick_from_extremes(
        distances, unavailable, k, n_near, largest=False, generator=generator
    )
    unavailable |= _as_marks(near, unavailable.shape)

    far = _pick_from_extremes(distances, unavailable, k, n_far, largest=True, generator=generator)
    unavailable |= _as_marks(far, unavailable.shape)

    n_missing = config.candidates_per_anchor - (near >= 0).sum(1) - (far >= 0).sum(1)
    uniform_draws = _pick_uniform(unavailable, n_missing, config.candidates_per_anchor, generator)
    return torch.cat([near, far, uniform_draws], dim=1)


def _pick_from_extremes(
    distances: Tensor,
    unavailable: Tensor,
    k: int,
    count: int,
    largest: bool,
    generator: torch.Generator,
) -> Tensor:
    """Pick `count` random available items per row among its k nearest (or farthest)."""
    if count == 0:
        return torch.empty((distances.shape[0], 0), dtype=torch.int64, device=distances.device)
    fill_value = float("-inf") if largest else float("inf")
    ranked = distances.masked_fill(unavailable, fill_value).topk(k, dim=1, largest=largest).indices
    available = ~unavailable.gather(1, ranked)

    keys = uniform(tuple(ranked.shape), generator, distances.device).masked_fill(
        ~available, float("inf")
    )
    order = keys.topk(min(count, k), dim=1, largest=False)
    picks = ranked.gather(1, order.indices)
    return picks.masked_fill(order.values.isinf(), -1)


def _pick_uniform(
    unavailable: Tensor, n_missing: Tensor, width: int, generator: torch.Generator
) -> Tensor:
    """Pick n_missing[row] random available items per row, padding with -1."""
    width = min(width, unavailable.shape[1])
    keys = uniform(tuple(unavailable.shape), generator, unavailable.device).masked_fill(
        unavailable, float("inf")
    )
    order = keys.topk(width, dim=1, largest=False)
    columns = torch.arange(width, device=unavailable.device)
    needed = columns.unsqueeze(0) < n_missing.unsqueeze(1)
    return order.indices.masked_fill(~needed | order.values.isinf(), -1)


def _as_marks(picks: Tensor, shape: torch.Size) -> Tensor:
    """Return a boolean (A, N) tensor, true at each valid (non-negative) pick."""
    counts = torch.zeros(shape, dtype=torch.int32, device=picks.device)
    counts.scatter_add_(1, picks.clamp(min=0), (picks >= 0).to(torch.int32))
    return counts > 0


def _pair_candidates(anchors: Tensor, candidates: Tensor) -> Tensor:
    """Turn every pair of an anchor's valid candidates into a triple (anchor, first, second)."""
    first, second = torch.triu_indices(
        candidates.shape[1], candidates.shape[1], offset=1, device=anchors.device
    )
    triples = torch.stack(
        [
            anchors.unsqueeze(1).expand(-1, first.numel()),
            candidates[:, first],
            candidates[:, second],
        ],
        dim=2,
    ).reshape(-1, 3)
    valid = (triples[:, 1] >= 0) & (triples[:, 2] >= 0)
    return triples[valid]


def _forced_unseen_triples(
    unseen: Tensor, allowed: Tensor, per_item: int, generator: torch.Generator
) -> Tensor:
    """Make `per_item` triples (anchor, unseen item, other item) for each item in `unseen`.

    The anchor is uniform over the allowed anchors and the other item uniform over all
    items except the unseen item and the anchor. The unseen items are never allowed
    anchors, so the anchor differs from the unseen item.
    """
    device = allowed.device
    items = torch.nonzero(unseen).flatten().repeat_interleave(per_item)
    if items.numel() == 0:
        return torch.empty((0, 3), dtype=torch.int64, device=device)

    allowed_items = torch.nonzero(allowed).flatten()
    anchor_draws = (uniform((items.numel(),), generator, device) * allowed_items.numel()).long()
    anchors = allowed_items[anchor_draws.clamp(max=allowed_items.numel() - 1)]

    n_items = allowed.numel()
    others = _uniform_excluding_two(items, anchors, n_items, generator)
    triples = torch.stack([anchors, items, others], dim=1)
    assert not is_degenerate(triples).any()
    return triples


def _uniform_excluding_two(
    first: Tensor, second: Tensor, n_items: int, generator: torch.Generator
) -> Tensor:
    """Draw per row an item uniform over range(n_items) minus the two distinct given items."""
    draws = (
        (uniform((first.numel(),), generator, first.device) * (n_items - 2))
        .long()
        .clamp(max=n_items - 3)
    )
    return skip_two_items(draws, first, second)
