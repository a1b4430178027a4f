"""Per-condition masks over the embedding dimensions, one row per condition."""

from __future__ import annotations

import torch
from torch import nn


class LearnedMasks(nn.Module):
    """Trainable masks m = ReLU(beta), with beta drawn from N(mean, std) by a seeded generator."""

    trainable = True

    def __init__(
        self, n_conditions: int, dim: int, *, mean: float = 0.9, std: float = 0.7, seed: int = 0
    ) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        initial = torch.randn(n_conditions, dim, generator=generator) * std + mean
        self.beta = nn.Parameter(initial)

    def forward(self) -> torch.Tensor:
        return torch.relu(self.beta)


class FixedMasks(nn.Module):
    """Disjoint binary masks: condition k owns dimensions [k*b, (k+1)*b) with b = dim // n_conditions.

    When dim is not a multiple of n_conditions, the last dim % n_conditions dimensions belong to
    no condition.
    """

    trainable = False

    def __init__(self, n_conditions: int, dim: int) -> None:
        super().__init__()
        if dim < n_conditions:
            raise ValueError(f"fixed masks need dim >= n_conditions, got {dim} < {n_conditions}")
        block = dim // n_conditions
        masks = torch.zeros(n_conditions, dim)
        for condition in range(n_conditions):
            masks[condition, condition * block : (condition + 1) * block] = 1.0
        self.register_buffer("values", masks)

    def forward(self) -> torch.Tensor:
        return self.values


class UnitMasks(nn.Module):
    """All-ones masks, so every condition uses the plain Euclidean distance."""

    trainable = False

    def __init__(self, n_conditions: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("values", torch.ones(n_conditions, dim))

    def forward(self) -> torch.Tensor:
        return self.values
