"""Configuration dataclasses for the model and for training, stored as plain dicts in checkpoints."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

VARIANTS = ("learned", "fixed", "standard", "task-specific")
DEVICES = ("auto", "cpu", "cuda")

# Learning rates by whether the backbone starts from pretrained weights. The CSN reference code
# fine-tunes an ImageNet-pretrained ResNet-18 with Adam at 5e-5. A small CNN trained from scratch
# learns far too slowly at that rate, so it defaults to 1e-3.
PRETRAINED_LEARNING_RATE = 5e-5
FROM_SCRATCH_LEARNING_RATE = 1e-3


def _from_dict(cls: type, values: dict[str, Any]) -> Any:
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} fields {unknown}; known fields are {sorted(known)}"
        )
    converted = {
        key: tuple(value) if isinstance(value, list) else value for key, value in values.items()
    }
    return cls(**converted)


@dataclass(frozen=True)
class CSNConfig:
    """Architecture and input format of a conditional similarity network.

    `pretrained` is None (random initialisation), "torchvision" (weights from torchvision's local
    cache) or the path of a state dict file. `resize_size` is the shorter-side size images are
    resized to before the centre crop to `image_size`, and None means `image_size`. `mean` and
    `std` normalise each channel. None picks the ImageNet statistics (their average for one channel).
    `mask_init_mean` and `mask_init_std` set the normal distribution of learned mask parameters.
    """

    n_conditions: int
    backbone: str = "small-cnn"
    embedding_dim: int = 64
    variant: str = "learned"
    in_channels: int = 3
    image_size: int = 64
    pretrained: str | None = None
    resize_size: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    mask_init_mean: float = 0.9
    mask_init_std: float = 0.7

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"invalid variant {self.variant!r}; expected one of {VARIANTS}")
        if self.n_conditions < 1:
            raise ValueError(f"n_conditions must be at least 1, got {self.n_conditions}")
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be at least 1, got {self.embedding_dim}")
        if self.variant == "fixed" and self.embedding_dim < self.n_conditions:
            raise ValueError(
                f"fixed masks need embedding_dim >= n_conditions, got {self.embedding_dim} < {self.n_conditions}"
            )
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {self.in_channels}")
        if self.image_size < 1:
            raise ValueError(f"image_size must be at least 1, got {self.image_size}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and len(value) != self.in_channels:
                raise ValueError(
                    f"{name} has {len(value)} values but in_channels is {self.in_channels}"
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CSNConfig:
        return _from_dict(cls, values)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, regularisation, device and data-loading settings for `train`.

    `epochs` counts all epochs, including those a resumed run already completed. `lr` None picks
    5e-5 for a pretrained backbone and 1e-3 otherwise. The rate is multiplied by `lr_decay` after
    every epoch. `lambda_e` weights the embedding norm and `lambda_m` the mask L1 norm (see
    `triplet_loss`). `amp` and `pin_memory` None mean "on when training on CUDA". `num_threads`
    sets `torch.set_num_threads` for the whole process. `early_stopping_patience` is the number of
    epochs without a better validation accuracy after which training stops. `max_triplets` trains on
    a seeded random subset of the training triplets. `cache_images` keeps decoded, transformed image
    tensors in memory whenever the transform has no random step.

    NOTE: with num_workers > 0 every worker keeps its own image cache, and the workers and their
    caches are recreated every epoch, so the cache mainly speeds up validation there.
    """

    epochs: int = 10
    batch_size: int = 256
    eval_batch_size: int = 256
    lr: float | None = None
    lr_decay: float = 0.985
    weight_decay: float = 0.0
    margin: float = 0.2
    lambda_e: float = 5e-3
    lambda_m: float = 5e-4
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None
    num_threads: int | None = None
    num_workers: int = 0
    pin_memory: bool | None = None
    early_stopping_patience: int | None = None
    max_triplets: int | None = None
    horizontal_flip: bool = False
    random_crop: bool = False
    cache_images: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError(
                f"batch sizes must be at least 1, got {self.batch_size} and {self.eval_batch_size}"
            )
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ValueError(
                f"invalid device {self.device!r}; expected one of {DEVICES} or 'cuda:<index>'"
            )
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be at least 0, got {self.num_workers}")
        if self.max_triplets is not None and self.max_triplets < 1:
            raise ValueError(f"max_triplets must be at least 1, got {self.max_triplets}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ValueError(
                f"early_stopping_patience must be at least 1, got {self.early_stopping_patience}"
            )

    def learning_rate(self, model_config: CSNConfig) -> float:
        """Return the configured learning rate, or the default for the model's initialisation."""
        if self.lr is not None:
            return self.lr
        if model_config.pretrained is not None:
            return PRETRAINED_LEARNING_RATE
        return FROM_SCRATCH_LEARNING_RATE

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, values)
