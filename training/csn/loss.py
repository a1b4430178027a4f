"""The CSN triplet loss with its embedding-norm and mask-L1 regularisers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LossWeights:
    """Margin and regulariser weights, with the CSN reference code's settings as defaults."""

    margin: float = 0.2
    lambda_e: float = 5e-3
    lambda_m: float = 5e-4


@dataclass(frozen=True)
class TripletLoss:
    """The total loss and its unweighted terms, all scalar tensors."""

    total: torch.Tensor
    hinge: torch.Tensor
    embedding_norm: torch.Tensor
    mask_l1: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {
            "total": float(self.total.detach()),
            "hinge": float(self.hinge.detach()),
            "embedding_norm": float(self.embedding_norm.detach()),
            "mask_l1": float(self.mask_l1.detach()),
        }


def triplet_loss(
    closer_distance: torch.Tensor,
    farther_distance: torch.Tensor,
    embeddings: torch.Tensor,
    batch_masks: torch.Tensor | None,
    weights: LossWeights = LossWeights(),
) -> TripletLoss:
    """Compute hinge + lambda_e * embedding_norm + lambda_m * mask_l1 for a batch of B triplets.

    - hinge: mean over triplets of max(0, D_c(a, closer) - D_c(a, farther) + margin).
    - embedding_norm: for each role (anchor, closer, farther), the Frobenius norm of the (B, d)
      matrix of unmasked embeddings divided by sqrt(B), averaged over the three roles. This is how
      the CSN reference code computes it (`embedded_x.norm(2) / sqrt(B)`). It equals the root mean
      square of the per-image L2 norms, not their sum.
    - mask_l1: sum of |m_c| over the (B, d) masks of the triplets' conditions, divided by B. It is
      zero when `batch_masks` is None, which callers pass for masks that are not trained.

    `closer_distance` and `farther_distance` are (B,), `embeddings` is (B, 3, d).
    """
    batch_size = closer_distance.shape[0]
    if batch_size == 0:
        raise ValueError("triplet_loss needs at least one triplet")
    if embeddings.shape[:2] != (batch_size, 3):
        raise ValueError(
            f"embeddings must have shape ({batch_size}, 3, d), got {tuple(embeddings.shape)}"
        )

    hinge = torch.relu(closer_distance - farther_distance + weights.margin).mean()

    role_norms = torch.linalg.vector_norm(embeddings, ord=2, dim=(0, 2))
    embedding_norm = role_norms.mean() / math.sqrt(batch_size)

    if batch_masks is None:
        mask_l1 = hinge.new_zeros(())
    else:
        mask_l1 = batch_masks.abs().sum() / batch_size

    total = hinge + weights.lambda_e * embedding_norm + weights.lambda_m * mask_l1
    return TripletLoss(total=total, hinge=hinge, embedding_norm=embedding_norm, mask_l1=mask_l1)
