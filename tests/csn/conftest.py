"""Fixtures for the CSN package tests: a small dataset of generated coloured shapes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from training.csn import TensorImageSource

COLOURS = {"red": (0.9, 0.1, 0.1), "green": (0.1, 0.8, 0.2), "blue": (0.15, 0.2, 0.9)}
SHAPES = ("square", "frame", "cross")
CONDITIONS = ["colour", "shape"]
IMAGE_SIZE = 20


@dataclass
class ShapesDataset:
    """Items drawn as one coloured shape each, and triplets for the conditions colour and shape."""

    source: TensorImageSource
    item_ids: list[int]
    colour: dict[int, str]
    shape: dict[int, str]
    train_triplets: torch.Tensor
    val_triplets: torch.Tensor
    conditions: list[str]


def draw_shape(
    shape: str, colour: tuple[float, float, float], rng: np.random.Generator
) -> torch.Tensor:
    """Draw a shape of random size and position on a dark background, as a (3, H, W) tensor in [0, 1]."""
    half = rng.integers(4, 7)
    centre_y, centre_x = rng.integers(half + 1, IMAGE_SIZE - half - 1, size=2)
    ys, xs = torch.meshgrid(torch.arange(IMAGE_SIZE), torch.arange(IMAGE_SIZE), indexing="ij")
    dy, dx = (ys - centre_y).abs(), (xs - centre_x).abs()

    if shape == "square":
        inside = (dy <= half) & (dx <= half)
    elif shape == "frame":
        inside = (dy <= half) & (dx <= half) & ((dy >= half - 1) | (dx >= half - 1))
    else:
        inside = ((dy <= 1) & (dx <= half)) | ((dx <= 1) & (dy <= half))

    image = torch.full((3, IMAGE_SIZE, IMAGE_SIZE), 0.1)
    for channel, value in enumerate(colour):
        image[channel][inside] = value
    return image


def sample_triplets(
    items: list[int],
    labels_by_condition: list[dict[int, str]],
    count: int,
    rng: np.random.Generator,
) -> torch.Tensor:
    """Draw triplets whose closer item shares the anchor's label under the condition and whose farther item does not."""
    rows = []
    for _ in range(count):
        condition = int(rng.integers(len(labels_by_condition)))
        labels = labels_by_condition[condition]
        anchor = int(rng.choice(items))
        same = [item for item in items if labels[item] == labels[anchor] and item != anchor]
        other = [item for item in items if labels[item] != labels[anchor]]
        rows.append([anchor, int(rng.choice(same)), int(rng.choice(other)), condition])
    return torch.tensor(rows, dtype=torch.int64)


def make_shapes_dataset(
    variants_per_pair: int = 10, n_train: int = 1200, n_val: int = 400, seed: int = 0
) -> ShapesDataset:
    """Build items for every colour and shape pair, holding out the last two variants of each pair for validation."""
    rng = np.random.default_rng(seed)
    images, item_ids, colour, shape = [], [], {}, {}
    train_items, val_items = [], []
    for colour_name, rgb in COLOURS.items():
        for shape_name in SHAPES:
            for variant in range(variants_per_pair):
                item_id = 100 + len(item_ids)
                images.append(draw_shape(shape_name, rgb, rng))
                item_ids.append(item_id)
                colour[item_id], shape[item_id] = colour_name, shape_name
                (val_items if variant >= variants_per_pair - 2 else train_items).append(item_id)

    labels = [colour, shape]
    return ShapesDataset(
        source=TensorImageSource(torch.stack(images), item_ids),
        item_ids=item_ids,
        colour=colour,
        shape=shape,
        train_triplets=sample_triplets(train_items, labels, n_train, rng),
        val_triplets=sample_triplets(val_items, labels, n_val, rng),
        conditions=list(CONDITIONS),
    )


@pytest.fixture(scope="session")
def shapes() -> ShapesDataset:
    return make_shapes_dataset()


@pytest.fixture(autouse=True)
def single_torch_thread():
    """Run each test on one torch thread and restore the previous count afterwards.

    These models are tiny, so one thread is fastest, and it avoids slowdowns from oversubscribed
    cores. With a fixed thread count, CPU results are also reproducible from run to run.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
