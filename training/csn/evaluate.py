"""Triplet accuracy, item embeddings and mask statistics of a trained model."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from .data import ImageSource, ImageTensorizer, as_triplets, build_transform, unique_image_keys
from .model import TripletModel, triplet_distances

# An entry of a mask counts as inactive when it is below this share of its row's maximum.
DEFAULT_ACTIVE_THRESHOLD = 1e-2


@dataclass(frozen=True)
class AccuracyReport:
    """Share of triplets with D_c(anchor, closer) < D_c(anchor, farther), overall and per condition.

    Conditions are keyed by slug when slugs were given, else by mask row. `overall` is NaN for
    an empty triplet set.
    """

    overall: float
    per_condition: dict[str | int, float]
    counts: dict[str | int, int]
    n_triplets: int


@dataclass(frozen=True)
class MaskStatistics:
    """Sparsity and overlap of the condition masks.

    `sparsity[c]` is the share of entries of mask c below threshold * max(mask c).
    `cosine[i][j]` is the cosine similarity of masks i and j. `shared_active[i][j]` counts the
    dimensions active in both masks i and j.
    """

    threshold: float
    sparsity: list[float]
    overall_sparsity: float
    cosine: list[list[float]]
    shared_active: list[list[int]]
    active: list[int]


def model_device(model: TripletModel) -> torch.device:
    return next(model.parameters()).device


@contextlib.contextmanager
def evaluation_mode(model: TripletModel) -> Iterator[None]:
    """Switch the model to eval mode without gradients, and restore its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def eval_tensorizer(
    model: TripletModel, image_source: ImageSource, *, cache: bool = False
) -> ImageTensorizer:
    """Build the deterministic image loader that matches the model's input format."""
    return ImageTensorizer(image_source, model.config, build_transform(model.config), cache=cache)


def embed_keys(
    model: TripletModel,
    tensorizer: ImageTensorizer,
    items: torch.Tensor,
    conditions: torch.Tensor,
    *,
    batch_size: int = 256,
    device: torch.device | None = None,
    amp: bool = False,
) -> torch.Tensor:
    """Embed each (item, condition row) key in batches and return the (U, d) embeddings on the CPU."""
    device = device or model_device(model)
    chunks: list[torch.Tensor] = []
    with evaluation_mode(model):
        for start in range(0, len(items), batch_size):
            images = tensorizer(items[start : start + batch_size]).to(device)
            rows = conditions[start : start + batch_size].to(device)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                chunks.append(model.embed(images, rows).float().cpu())
    if not chunks:
        return torch.empty(0, model.config.embedding_dim)
    return torch.cat(chunks)


def triplet_accuracy(
    model: TripletModel,
    image_source: ImageSource | ImageTensorizer,
    triplets: torch.Tensor,
    *,
    conditions: Sequence[str] | None = None,
    batch_size: int = 256,
    device: torch.device | None = None,
    amp: bool = False,
) -> AccuracyReport:
    """Compute triplet accuracy overall and per condition, embedding each distinct image once.

    A tie (equal distances) counts as wrong.
    """
    triplets = as_triplets(triplets, model.config.n_conditions)
    tensorizer = (
        image_source
        if isinstance(image_source, ImageTensorizer)
        else eval_tensorizer(model, image_source)
    )
    keys = unique_image_keys(triplets, per_condition=not model.shares_embedding)
    embeddings = embed_keys(
        model,
        tensorizer,
        keys.items,
        keys.conditions,
        batch_size=batch_size,
        device=device,
        amp=amp,
    )

    with evaluation_mode(model):
        masks_device = model.masks().device
        rows = triplets[:, 3]
        closer, farther, _ = triplet_distances(
            model, embeddings.to(masks_device), keys.index.to(masks_device), rows.to(masks_device)
        )
        correct = (closer < farther).cpu()

    return _accuracy_report(correct, rows, conditions)


def _accuracy_report(
    correct: torch.Tensor, rows: torch.Tensor, conditions: Sequence[str] | None
) -> AccuracyReport:
    per_condition: dict[str | int, float] = {}
    counts: dict[str | int, int] = {}
    for row in torch.unique(rows).tolist():
        selected = correct[rows == row]
        key = conditions[row] if conditions is not None else row
        per_condition[key] = selected.float().mean().item()
        counts[key] = int(selected.numel())

    overall = correct.float().mean().item() if correct.numel() else float("nan")
    return AccuracyReport(
        overall=overall, per_condition=per_condition, counts=counts, n_triplets=int(correct.numel())
    )


def embed_items(
    model: TripletModel,
    image_source: ImageSource,
    item_ids: Sequence[int],
    batch_size: int = 256,
    device: torch.device | None = None,
    *,
    condition_row: int | None = None,
) -> torch.Tensor:
    """Return the unmasked (N, d) embeddings of the items, on the CPU.

    The task-specific model has one embedding per condition, so it needs `condition_row`.
    """
    if not model.shares_embedding and condition_row is None:
        raise ValueError(
            "the task-specific model has one embedding per condition; pass condition_row"
        )
    items = torch.as_tensor(list(item_ids), dtype=torch.int64)
    rows = torch.full_like(items, condition_row or 0)
    tensorizer = eval_tensorizer(model, image_source)
    return embed_keys(model, tensorizer, items, rows, batch_size=batch_size, device=device)


def masked_embeddings(
    model: TripletModel,
    image_source: ImageSource,
    item_ids: Sequence[int],
    batch_size: int = 256,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Return the (C, N, d) embeddings of the items multiplied by each condition's mask, on the CPU."""
    with torch.no_grad():
        masks = model.masks().detach().float().cpu()

    if model.shares_embedding:
        embeddings = embed_items(model, image_source, item_ids, batch_size, device)
        return embeddings.unsqueeze(0) * masks.unsqueeze(1)

    per_condition = [
        embed_items(model, image_source, item_ids, batch_size, device, condition_row=row)
        * masks[row]
        for row in range(model.config.n_conditions)
    ]
    return torch.stack(per_condition)


def mask_statistics(
    model: TripletModel, threshold: float = DEFAULT_ACTIVE_THRESHOLD
) -> MaskStatistics:
    """Measure how sparse the masks are and how much they overlap.

    An entry is active when it is at least `threshold` times the maximum of its mask. An all-zero
    mask has no active entries.
    """
    with torch.no_grad():
        masks = model.masks().detach().float().cpu()

    row_max = masks.max(dim=1, keepdim=True).values
    active = (masks >= threshold * row_max) & (row_max > 0)
    sparsity = 1.0 - active.float().mean(dim=1)

    unit = masks / masks.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cosine = unit @ unit.T
    shared = active.float() @ active.float().T

    return MaskStatistics(
        threshold=threshold,
        sparsity=sparsity.tolist(),
        overall_sparsity=1.0 - active.float().mean().item(),
        cosine=cosine.tolist(),
        shared_active=shared.round().to(torch.int64).tolist(),
        active=active.sum(dim=1).tolist(),
    )
