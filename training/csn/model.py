"""Conditional similarity networks in four variants behind one interface.

Every model built here has:

- `embed(images, condition_rows=None) -> (N, d)`: the unmasked embedding of each image. Models
  with `shares_embedding = True` ignore `condition_rows`. The task-specific model needs them,
  because each condition has its own network.
- `masks() -> (C, d)`: the mask of each condition (all ones for "standard" and "task-specific").
- `masked_distance(emb_a, emb_b, condition_rows) -> (N,)`: ||(emb_a - emb_b) * m_c||_2.
- `masks_trainable`: whether the mask L1 penalty applies.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbones import build_backbone
from .config import CSNConfig
from .masks import FixedMasks, LearnedMasks, UnitMasks

# Smallest squared distance passed to sqrt, so identical embeddings get a finite gradient.
SQUARED_DISTANCE_FLOOR = 1e-12


def conditional_distance(
    emb_a: torch.Tensor, emb_b: torch.Tensor, masks: torch.Tensor
) -> torch.Tensor:
    """Compute ||(emb_a - emb_b) * masks||_2 for each row of the three (N, d) tensors."""
    squared = ((emb_a - emb_b) * masks).pow(2).sum(dim=-1)
    return squared.clamp_min(SQUARED_DISTANCE_FLOOR).sqrt()


class EmbeddingNetwork(nn.Module):
    """A backbone followed by a linear layer to the embedding dimension."""

    def __init__(self, backbone: nn.Module, feature_dim: int, embedding_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))


class ConditionalSimilarityNetwork(nn.Module):
    """One shared embedding network and one mask per condition (learned, fixed or all ones)."""

    shares_embedding = True

    def __init__(
        self, config: CSNConfig, network: EmbeddingNetwork, condition_masks: nn.Module
    ) -> None:
        super().__init__()
        self.config = config
        self.network = network
        self.condition_masks = condition_masks

    @property
    def masks_trainable(self) -> bool:
        return self.condition_masks.trainable

    def embed(
        self, images: torch.Tensor, condition_rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.network(images)

    def masks(self) -> torch.Tensor:
        return self.condition_masks()

    def masked_distance(
        self, emb_a: torch.Tensor, emb_b: torch.Tensor, condition_rows: torch.Tensor
    ) -> torch.Tensor:
        return conditional_distance(emb_a, emb_b, self.masks()[condition_rows])


class TaskSpecificNetworks(nn.Module):
    """Separate embedding networks, one per condition, each embedding the images of its condition."""

    shares_embedding = False
    masks_trainable = False

    def __init__(self, config: CSNConfig, networks: list[EmbeddingNetwork]) -> None:
        super().__init__()
        if len(networks) != config.n_conditions:
            raise ValueError(f"expected {config.n_conditions} networks, got {len(networks)}")
        self.config = config
        self.networks = nn.ModuleList(networks)
        self.condition_masks = UnitMasks(config.n_conditions, config.embedding_dim)

    def embed(
        self, images: torch.Tensor, condition_rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        if condition_rows is None:
            raise ValueError(
                "the task-specific model embeds each image with its condition's network; pass condition_rows"
            )
        if condition_rows.shape != (images.shape[0],):
            raise ValueError(
                f"condition_rows must have shape ({images.shape[0]},), got {tuple(condition_rows.shape)}"
            )

        positions: list[torch.Tensor] = []
        outputs: list[torch.Tensor] = []
        for row in torch.unique(condition_rows).tolist():
            selected = torch.nonzero(condition_rows == row, as_tuple=True)[0]
            positions.append(selected)
            outputs.append(self.networks[row](images[selected]))

        # Undo the grouping by condition so row i of the result belongs to images[i].
        order = torch.cat(positions)
        return torch.cat(outputs)[torch.argsort(order)]

    def masks(self) -> torch.Tensor:
        return self.condition_masks()

    def masked_distance(
        self, emb_a: torch.Tensor, emb_b: torch.Tensor, condition_rows: torch.Tensor
    ) -> torch.Tensor:
        return conditional_distance(emb_a, emb_b, self.masks()[condition_rows])


TripletModel = ConditionalSimilarityNetwork | TaskSpecificNetworks


def build_model(config: CSNConfig, *, seed: int = 0, load_pretrained: bool = True) -> TripletModel:
    """Build the model that `config` describes, with weights and masks initialised from `seed`.

    The global torch RNG is forked, so building a model neither depends on nor changes it.
    `load_pretrained=False` skips reading pretrained weights, for callers that load a checkpoint
    right after.
    """
    pretrained = config.pretrained if load_pretrained else None

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)

        if config.variant == "task-specific":
            networks = [
                _build_embedding_network(config, pretrained) for _ in range(config.n_conditions)
            ]
            return TaskSpecificNetworks(config, networks)

        network = _build_embedding_network(config, pretrained)

    if config.variant == "learned":
        masks: nn.Module = LearnedMasks(
            config.n_conditions,
            config.embedding_dim,
            mean=config.mask_init_mean,
            std=config.mask_init_std,
            seed=seed,
        )
    elif config.variant == "fixed":
        masks = FixedMasks(config.n_conditions, config.embedding_dim)
    else:
        masks = UnitMasks(config.n_conditions, config.embedding_dim)
    return ConditionalSimilarityNetwork(config, network, masks)


def _build_embedding_network(config: CSNConfig, pretrained: str | None) -> EmbeddingNetwork:
    backbone, feature_dim = build_backbone(
        config.backbone, in_channels=config.in_channels, pretrained=pretrained
    )
    return EmbeddingNetwork(backbone, feature_dim, config.embedding_dim)


def triplet_distances(
    model: TripletModel,
    image_embeddings: torch.Tensor,
    index: torch.Tensor,
    condition_rows: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gather triplet embeddings from distinct-image embeddings and compute both conditional distances.

    `image_embeddings` is (U, d), `index` (B, 3) holds rows into it for anchor, closer and farther,
    and `condition_rows` is (B,). Returns D_c(anchor, closer), D_c(anchor, farther), each (B,), and
    the gathered (B, 3, d) embeddings in float32.
    """
    embeddings = image_embeddings.float()[index]
    closer = model.masked_distance(embeddings[:, 0], embeddings[:, 1], condition_rows)
    farther = model.masked_distance(embeddings[:, 0], embeddings[:, 2], condition_rows)
    return closer, farther, embeddings
