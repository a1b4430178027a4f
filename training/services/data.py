"""A dataset's stored triplets and images, in the form the CSN package trains on."""

from dataclasses import dataclass

import numpy as np
from PIL import Image

from annotation.models import Condition, Dataset, Item, Triplet
from training.splits import held_out_mask

UNUSED_ROW_PREFIX = "unused-row-"


@dataclass
class TrainingData:
    """Triplets as (anchor, closer, farther, condition row) item ids, split by `held_out`."""

    triplets: np.ndarray
    held_out: np.ndarray
    conditions: list[str]
    image_paths: dict[int, str]

    @property
    def train_triplets(self) -> np.ndarray:
        return self.triplets[~self.held_out]

    @property
    def test_triplets(self) -> np.ndarray:
        return self.triplets[self.held_out]


def condition_slugs_by_row(*, dataset: Dataset) -> list[str]:
    """List condition slugs in mask-row order; retired conditions keep their rows."""
    rows = dict(Condition.objects.filter(dataset=dataset).values_list("index", "slug"))
    if not rows:
        raise ValueError(f"dataset {dataset.slug!r} has no conditions; create one in the admin or import triplets")
    return [rows.get(row, f"{UNUSED_ROW_PREFIX}{row}") for row in range(max(rows) + 1)]


def dataset_triplet_array(*, dataset: Dataset, condition_slugs: list[str] | None = None) -> np.ndarray:
    """Return every stored triplet of the dataset as an int64 (N, 4) array, in storage order."""
    triplets = Triplet.objects.filter(dataset=dataset)
    if condition_slugs:
        triplets = triplets.filter(condition__slug__in=condition_slugs)
    rows = triplets.order_by("id").values_list("anchor_id", "closer_id", "farther_id", "condition__index")
    array = np.fromiter((value for row in rows.iterator(chunk_size=20_000) for value in row), dtype=np.int64)
    return array.reshape(-1, 4)


def dataset_image_paths(*, dataset: Dataset) -> dict[int, str]:
    """Map item ids to local image paths (the storage must be a file system)."""
    return {item.pk: item.image.path for item in Item.objects.filter(dataset=dataset).only("id", "image")}


def training_data_for(*, dataset: Dataset) -> TrainingData:
    triplets = dataset_triplet_array(dataset=dataset)
    if len(triplets) == 0:
        raise ValueError(
            f"dataset {dataset.slug!r} has no triplets to train on; import some, sample them from "
            "attributes, or collect answers first"
        )
    return TrainingData(
        triplets=triplets,
        held_out=held_out_mask(triplets),
        conditions=condition_slugs_by_row(dataset=dataset),
        image_paths=dataset_image_paths(dataset=dataset),
    )


def default_model_settings(*, dataset: Dataset) -> dict:
    """Pick a backbone from the images: the small CNN for small greyscale ones, ResNet-18 otherwise."""
    item = Item.objects.filter(dataset=dataset).order_by("id").first()
    if item is None:
        raise ValueError(f"dataset {dataset.slug!r} has no items; import images first")

    with Image.open(item.image.path) as image:
        greyscale = image.mode in ("L", "1", "I;16")
    if greyscale and max(item.width, item.height) <= 128:
        return {"backbone": "small-cnn", "in_channels": 1, "image_size": 64}
    return {"backbone": "resnet18-layer3", "in_channels": 3, "image_size": 112, "resize_size": 112}
