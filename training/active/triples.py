"""Triple tensors: canonical order, int64 keys and item masks.

A triple is a row (anchor, a, b) of item positions. In canonical order a < b, so the two
orders in which a task can show its candidates map to the same row.
"""

from collections.abc import Iterable

import torch
from torch import Tensor

# Keys are anchor * base**2 + a * base + b, which must stay below 2**63.
MAX_KEY_BASE = 2_097_151

ItemSet = Tensor | Iterable[int]


def canonical_order(triples: Tensor) -> Tensor:
    """Return a copy of (M, 3) `triples` with each row's candidates sorted so that a < b."""
    check_triples(triples)
    first = torch.minimum(triples[:, 1], triples[:, 2])
    second = torch.maximum(triples[:, 1], triples[:, 2])
    return torch.stack([triples[:, 0], first, second], dim=1)


def encode_triples(triples: Tensor, base: int) -> Tensor:
    """Encode each row (anchor, a, b) as one int64 key, unique while every position is < `base`."""
    check_triples(triples)
    if base > MAX_KEY_BASE:
        raise ValueError(
            f"key base {base} is too large: base**3 must stay below 2**63 (max {MAX_KEY_BASE})"
        )
    rows = triples.to(torch.int64)
    return (rows[:, 0] * base + rows[:, 1]) * base + rows[:, 2]


def key_base(*triple_sets: Tensor) -> int:
    """Return the smallest key base that encodes every position in the given triple tensors."""
    largest = max((int(rows.max()) for rows in triple_sets if rows.numel() > 0), default=0)
    return largest + 1


def is_degenerate(triples: Tensor) -> Tensor:
    """Return a boolean (M,) tensor, true where a row repeats an item."""
    anchor, a, b = triples.unbind(dim=1)
    return (anchor == a) | (anchor == b) | (a == b)


def unique_triples(triples: Tensor) -> Tensor:
    """Return the distinct rows of canonical `triples`, sorted by key."""
    if triples.shape[0] == 0:
        return triples
    base = key_base(triples)
    keys = torch.unique(encode_triples(triples, base))
    anchor = keys // (base * base)
    a = (keys // base) % base
    b = keys % base
    return torch.stack([anchor, a, b], dim=1)


def as_triple_tensor(
    triples: Tensor | Iterable[tuple[int, int, int]], device: torch.device
) -> Tensor:
    """Convert a tensor or an iterable of (anchor, a, b) tuples to an (M, 3) int64 tensor."""
    if isinstance(triples, Tensor):
        rows = triples.to(device=device, dtype=torch.int64)
    else:
        rows = torch.tensor(list(triples), dtype=torch.int64, device=device).reshape(-1, 3)
    check_triples(rows)
    return rows


def as_item_mask(items: ItemSet | None, n_items: int, device: torch.device) -> Tensor:
    """Convert a boolean (N,) mask, a tensor of positions or an iterable of positions to a mask."""
    if items is None:
        return torch.zeros(n_items, dtype=torch.bool, device=device)
    if isinstance(items, Tensor) and items.dtype == torch.bool:
        if items.shape != (n_items,):
            raise ValueError(f"item mask has shape {tuple(items.shape)}, expected ({n_items},)")
        return items.to(device)

    positions = (
        items if isinstance(items, Tensor) else torch.tensor(sorted(items), dtype=torch.int64)
    )
    positions = positions.to(device=device, dtype=torch.int64).reshape(-1)
    if positions.numel() > 0 and (positions.min() < 0 or positions.max() >= n_items):
        raise ValueError(
            f"item positions must lie in [0, {n_items}), got {positions.min()}..{positions.max()}"
        )
    mask = torch.zeros(n_items, dtype=torch.bool, device=device)
    mask[positions] = True
    return mask


def check_triples(triples: Tensor) -> None:
    """Raise ValueError unless `triples` is an integer tensor of shape (M, 3)."""
    if triples.dim() != 2 or triples.shape[1] != 3:
        raise ValueError(f"triples must have shape (M, 3), got {tuple(triples.shape)}")
    if triples.dtype.is_floating_point or triples.dtype == torch.bool:
        raise ValueError(f"triples must hold integer item positions, got dtype {triples.dtype}")


def uniform(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> Tensor:
    """Draw U[0, 1) values on the generator's device and move them to `device`.

    Drawing on the generator's device keeps a CPU generator usable for CUDA tensors, and
    gives the same numbers for the same seed whichever device the embeddings are on.
    """
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def permutation(n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """Return a seeded random permutation of range(n) on `device`."""
    return torch.randperm(n, generator=generator, device=generator.device).to(device)


def skip_two_items(draws: Tensor, first: Tensor, second: Tensor) -> Tensor:
    """Map draws from range(N - 2) onto range(N) without the distinct items first and second."""
    low = torch.minimum(first, second)
    high = torch.maximum(first, second)
    shifted = draws + (draws >= low).long()
    return shifted + (shifted >= high).long()


def anchor_distances(points: Tensor, triples: Tensor, chunk_size: int) -> tuple[Tensor, Tensor]:
    """Return D(anchor, a) and D(anchor, b) per (anchor, a, b) row, gathering `chunk_size` rows at a time."""
    to_a = torch.empty(triples.shape[0], dtype=points.dtype, device=points.device)
    to_b = torch.empty_like(to_a)
    for start in range(0, triples.shape[0], chunk_size):
        rows = triples[start : start + chunk_size].to(points.device)
        anchor = points[rows[:, 0]]
        to_a[start : start + chunk_size] = torch.linalg.vector_norm(points[rows[:, 1]] - anchor, dim=1)
        to_b[start : start + chunk_size] = torch.linalg.vector_norm(points[rows[:, 2]] - anchor, dim=1)
    return to_a, to_b
