"""Triplet arrays, image sources, transforms and batches that embed each distinct image once.

A triplet array is int64 with shape (N, 4) and columns anchor item id, closer item id, farther
item id and condition row (the condition's row in the mask matrix).
"""

from __future__ import annotations

import logging
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, Sampler
from torchvision.transforms import v2

from .config import CSNConfig

logger = logging.getLogger(__name__)

TRIPLET_COLUMNS = ("anchor", "closer", "farther", "condition")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageLoadError(RuntimeError):
    """Raised when an item's image is missing or cannot be decoded."""

    def __init__(self, message: str, item_id: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.item_id = item_id
        self.path = path


def as_triplets(
    values: torch.Tensor | np.ndarray | Sequence[Sequence[int]], n_conditions: int | None = None
) -> torch.Tensor:
    """Convert `values` to an int64 (N, 4) tensor, checking condition rows if n_conditions is given."""
    if isinstance(values, torch.Tensor):
        triplets = values
    else:
        triplets = torch.from_numpy(np.asarray(values))
    if triplets.numel() == 0:
        return torch.empty(0, 4, dtype=torch.int64)
    if triplets.ndim != 2 or triplets.shape[1] != 4:
        raise ValueError(
            f"triplets must have shape (N, 4) with columns {TRIPLET_COLUMNS}, got {tuple(triplets.shape)}"
        )
    if triplets.is_floating_point():
        raise ValueError(f"triplets must be integers, got dtype {triplets.dtype}")
    triplets = triplets.to(torch.int64)

    if n_conditions is not None:
        rows = triplets[:, 3]
        if bool((rows < 0).any()) or bool((rows >= n_conditions).any()):
            bad = rows[(rows < 0) | (rows >= n_conditions)][0].item()
            raise ValueError(f"condition row {bad} is outside 0..{n_conditions - 1}")
    return triplets


class ImageSource(ABC):
    """Source of item images, each a PIL image or a float tensor (C, H, W) with values in [0, 1]."""

    @abstractmethod
    def load(self, item_id: int) -> Image.Image | torch.Tensor:
        """Load the image of `item_id`, raising ImageLoadError when it is missing or unreadable."""

    def location(self, item_id: int) -> str:
        """Describe where the image of `item_id` comes from, for error messages."""
        return f"item {item_id}"


class PathImageSource(ImageSource):
    """Images read with PIL from a mapping of item id to file path."""

    def __init__(self, paths: Mapping[int, str | os.PathLike]) -> None:
        self.paths = {int(item_id): Path(path) for item_id, path in paths.items()}

    def location(self, item_id: int) -> str:
        return str(self.paths.get(item_id, "<no path>"))

    def load(self, item_id: int) -> Image.Image:
        path = self.paths.get(item_id)
        if path is None:
            raise ImageLoadError(
                f"item {item_id} has no image path in this image source ({len(self.paths)} items)",
                item_id,
            )
        try:
            with Image.open(path) as image:
                image.load()
                return image.copy()
        except FileNotFoundError as error:
            raise ImageLoadError(
                f"image of item {item_id} not found at {path}", item_id, str(path)
            ) from error
        except (UnidentifiedImageError, OSError) as error:
            raise ImageLoadError(
                f"image of item {item_id} at {path} cannot be read: {error}", item_id, str(path)
            ) from error


class TensorImageSource(ImageSource):
    """Images held in memory as a float tensor (N, C, H, W) with values in [0, 1]."""

    def __init__(self, images: torch.Tensor, item_ids: Sequence[int]) -> None:
        if images.ndim != 4 or images.shape[0] != len(item_ids):
            raise ValueError(
                f"images must be (N, C, H, W) with N = {len(item_ids)} item ids, got {tuple(images.shape)}"
            )
        self.images = images
        self.rows = {int(item_id): row for row, item_id in enumerate(item_ids)}

    def load(self, item_id: int) -> torch.Tensor:
        row = self.rows.get(item_id)
        if row is None:
            raise ImageLoadError(
                f"item {item_id} has no image in this tensor image source ({len(self.rows)} items)",
                item_id,
            )
        return self.images[row]


def default_normalisation(in_channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return ImageNet mean and std for RGB, their averages for one channel, else 0.5 and 0.5."""
    if in_channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    if in_channels == 1:
        return (sum(IMAGENET_MEAN) / 3,), (sum(IMAGENET_STD) / 3,)
    return (0.5,) * in_channels, (0.5,) * in_channels


def build_transform(
    config: CSNConfig, *, horizontal_flip: bool = False, random_crop: bool = False
) -> v2.Compose:
    """Build the transform: resize the shorter side, crop to image_size, optionally flip, normalise.

    With both flags off (the evaluation transform) the result is deterministic. `random_crop`
    takes a random image_size crop in place of the centre crop.
    """
    mean, std = default_normalisation(config.in_channels)
    mean = config.mean or mean
    std = config.std or std
    crop = v2.RandomCrop(config.image_size) if random_crop else v2.CenterCrop(config.image_size)

    steps: list[Callable] = [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Resize(config.resize_size or config.image_size, antialias=True),
        crop,
    ]
    if horizontal_flip:
        steps.append(v2.RandomHorizontalFlip())
    steps.append(v2.Normalize(mean=list(mean), std=list(std)))
    return v2.Compose(steps)


class ImageTensorizer:
    """Loads images by item id and returns them transformed and stacked as (N, C, H, W).

    With `cache=True` every transformed image stays in memory. Only use it with a deterministic
    transform and a dataset that fits in memory.
    """

    def __init__(
        self, source: ImageSource, config: CSNConfig, transform: Callable, *, cache: bool = False
    ) -> None:
        self.source = source
        self.in_channels = config.in_channels
        self.transform = transform
        self.cache: dict[int, torch.Tensor] | None = {} if cache else None

    def __call__(self, item_ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        ids = item_ids.tolist() if isinstance(item_ids, torch.Tensor) else list(item_ids)
        return torch.stack([self.image(int(item_id)) for item_id in ids])

    def image(self, item_id: int) -> torch.Tensor:
        if self.cache is not None and item_id in self.cache:
            return self.cache[item_id]

        raw = self.source.load(item_id)
        if isinstance(raw, Image.Image):
            raw = self._convert_mode(raw, item_id)
        elif raw.shape[0] != self.in_channels:
            raise ImageLoadError(
                f"image of item {item_id} has {raw.shape[0]} channels but the model takes {self.in_channels}",
                item_id,
            )
        tensor = self.transform(raw).as_subclass(torch.Tensor)

        if self.cache is not None:
            self.cache[item_id] = tensor
        return tensor

    def _convert_mode(self, image: Image.Image, item_id: int) -> Image.Image:
        if self.in_channels == 1:
            return image.convert("L")
        if self.in_channels == 3:
            return image.convert("RGB")
        location = self.source.location(item_id)
        raise ImageLoadError(
            f"cannot convert image of item {item_id} at {location} to {self.in_channels} channels",
            item_id,
        )


class ImageKeys(NamedTuple):
    """The distinct images a batch needs, and where each triplet member finds its embedding."""

    items: torch.Tensor  # (U,) item ids
    conditions: torch.Tensor  # (U,) condition rows, used by models without a shared embedding
    index: torch.Tensor  # (B, 3) rows into items for anchor, closer and farther


def unique_image_keys(triplets: torch.Tensor, *, per_condition: bool) -> ImageKeys:
    """Find the distinct images of a batch of triplets so each is embedded once.

    With `per_condition` the key is (item id, condition row), because a task-specific model embeds
    the same item differently under each condition. Otherwise the key is the item id alone and the
    returned conditions are all zero, because models with a shared embedding ignore them.
    """
    members = triplets[:, :3]
    conditions = triplets[:, 3:4].expand(-1, 3)
    if per_condition:
        keys = torch.stack([members.reshape(-1), conditions.reshape(-1)], dim=1)
        unique, inverse = torch.unique(keys, dim=0, return_inverse=True)
        return ImageKeys(unique[:, 0].contiguous(), unique[:, 1].contiguous(), inverse.view(-1, 3))

    unique, inverse = torch.unique(members.reshape(-1), return_inverse=True)
    return ImageKeys(unique, torch.zeros_like(unique), inverse.view(-1, 3))


class TripletBatch(NamedTuple):
    """A batch of B triplets with its U distinct images already transformed."""

    images: torch.Tensor  # (U, C, H, W)
    image_conditions: torch.Tensor  # (U,)
    index: torch.Tensor  # (B, 3)
    conditions: torch.Tensor  # (B,)


class TripletBatchDataset(Dataset):
    """Triplet batches keyed by a tensor of triplet row numbers, for a DataLoader with batch_size=None."""

    def __init__(
        self, triplets: torch.Tensor, images: ImageTensorizer, *, per_condition: bool
    ) -> None:
        self.triplets = triplets
        self.images = images
        self.per_condition = per_condition

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, rows: torch.Tensor) -> TripletBatch:
        triplets = self.triplets[rows]
        keys = unique_image_keys(triplets, per_condition=self.per_condition)
        return TripletBatch(
            self.images(keys.items), keys.conditions, keys.index, triplets[:, 3].contiguous()
        )


class ShuffledBatches(Sampler[torch.Tensor]):
    """Sampler of each batch's row numbers, shuffled per epoch by a generator seeded from (seed, epoch).

    Seeding per epoch makes an epoch's order independent of earlier epochs, so a resumed run
    gets the same batches as an uninterrupted one.
    """

    def __init__(self, n_triplets: int, batch_size: int, seed: int) -> None:
        self.n_triplets = n_triplets
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.n_triplets / self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(self.n_triplets, generator=generator)
        yield from torch.split(order, self.batch_size)


def epoch_seed(seed: int, epoch: int) -> int:
    """Derive a distinct seed for each (seed, epoch) pair."""
    return (seed * 1_000_003 + epoch) % (2**63)
