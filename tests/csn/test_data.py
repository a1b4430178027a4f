"""Triplet arrays, image sources, transforms and batches of distinct images."""

import numpy as np
import pytest
import torch
from PIL import Image

from training.csn import (
    CSNConfig,
    ImageLoadError,
    ImageTensorizer,
    PathImageSource,
    TensorImageSource,
    as_triplets,
    build_transform,
    unique_image_keys,
)
from training.csn.data import ShuffledBatches, TripletBatchDataset


def grey_config(**overrides) -> CSNConfig:
    values = {"n_conditions": 2, "in_channels": 1, "image_size": 8, "mean": (0.5,), "std": (0.5,)}
    return CSNConfig(**{**values, **overrides})


def write_png(path, value: int, size=(10, 8), mode="L"):
    Image.new(mode, size, value).save(path)
    return path


def test_as_triplets_converts_lists():
    triplets = as_triplets([[1, 2, 3, 0], [4, 5, 6, 1]], n_conditions=2)

    assert triplets.dtype == torch.int64
    assert triplets.shape == (2, 4)


def test_as_triplets_accepts_numpy():
    triplets = as_triplets(np.array([[1, 2, 3, 0]], dtype=np.int32))

    assert triplets.dtype == torch.int64


def test_as_triplets_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        as_triplets([[1, 2, 3]])


def test_as_triplets_rejects_condition_out_of_range():
    with pytest.raises(ValueError, match="condition row 2"):
        as_triplets([[1, 2, 3, 2]], n_conditions=2)


def test_as_triplets_empty():
    assert as_triplets([]).shape == (0, 4)


def test_missing_file_names_item_and_path(tmp_path):
    path = tmp_path / "missing.png"
    source = PathImageSource({7: path})

    with pytest.raises(ImageLoadError) as raised:
        source.load(7)

    assert "item 7" in str(raised.value)
    assert str(path) in str(raised.value)
    assert raised.value.item_id == 7


def test_unreadable_file_names_item_and_path(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not an image")
    source = PathImageSource({3: path})

    with pytest.raises(ImageLoadError) as raised:
        source.load(3)

    assert "item 3" in str(raised.value)
    assert str(path) in str(raised.value)


def test_unknown_item_names_item():
    source = PathImageSource({})

    with pytest.raises(ImageLoadError, match="item 11"):
        source.load(11)


def test_tensor_source_unknown_item_raises():
    source = TensorImageSource(torch.zeros(1, 1, 4, 4), [5])

    with pytest.raises(ImageLoadError, match="item 6"):
        source.load(6)


def test_path_source_converts_rgb_to_grey(tmp_path):
    source = PathImageSource({1: write_png(tmp_path / "red.png", (255, 0, 0), mode="RGB")})
    config = grey_config()
    images = ImageTensorizer(source, config, build_transform(config))

    batch = images([1])

    # PIL's L conversion weights red by 0.299, and the config normalises with mean 0.5 and std 0.5.
    assert batch.shape == (1, 1, 8, 8)
    assert batch.mean().item() == pytest.approx((0.299 - 0.5) / 0.5, abs=0.01)
    assert batch.std().item() == pytest.approx(0.0, abs=1e-6)


def test_transform_resizes_then_centre_crops():
    config = CSNConfig(
        n_conditions=1, in_channels=1, image_size=4, resize_size=8, mean=(0.0,), std=(1.0,)
    )
    image = torch.zeros(1, 16, 16)
    image[:, 2:14, 2:14] = 1.0

    output = build_transform(config)(image)

    assert output.shape == (1, 4, 4)
    assert torch.allclose(output, torch.ones(1, 4, 4))


def test_default_normalisation_for_rgb():
    config = CSNConfig(n_conditions=1, image_size=2)
    image = torch.full((3, 2, 2), 0.485)

    output = build_transform(config)(image)

    assert output[0].abs().max().item() == pytest.approx(0.0, abs=1e-6)
    assert output[1, 0, 0].item() == pytest.approx((0.485 - 0.456) / 0.224, abs=1e-5)


def test_horizontal_flip_flips_some_images():
    config = CSNConfig(n_conditions=1, in_channels=1, image_size=4, mean=(0.0,), std=(1.0,))
    transform = build_transform(config, horizontal_flip=True)
    image = torch.zeros(1, 4, 4)
    image[:, :, 0] = 1.0
    torch.manual_seed(0)

    flipped = [transform(image)[0, 0, 3].item() == 1.0 for _ in range(40)]

    assert any(flipped)
    assert not all(flipped)


def test_channel_mismatch_raises():
    source = TensorImageSource(torch.zeros(1, 3, 8, 8), [1])
    config = grey_config()

    with pytest.raises(ImageLoadError, match="3 channels"):
        ImageTensorizer(source, config, build_transform(config))([1])


def test_cache_keeps_tensors():
    class CountingSource(TensorImageSource):
        loads = 0

        def load(self, item_id):
            CountingSource.loads += 1
            return super().load(item_id)

    config = grey_config()
    source = CountingSource(torch.rand(2, 1, 8, 8), [1, 2])
    images = ImageTensorizer(source, config, build_transform(config), cache=True)

    first = images([1, 2, 1])
    second = images([2, 1])

    assert CountingSource.loads == 2
    assert torch.equal(first[0], second[1])


def test_unique_keys_gather_original_items():
    triplets = torch.tensor([[5, 6, 7, 0], [7, 5, 9, 1], [6, 9, 5, 0]])

    keys = unique_image_keys(triplets, per_condition=False)

    assert keys.items.tolist() == [5, 6, 7, 9]
    assert torch.equal(keys.items[keys.index], triplets[:, :3])


def test_unique_keys_per_condition():
    triplets = torch.tensor([[5, 6, 7, 0], [5, 6, 7, 1], [6, 5, 7, 0]])

    keys = unique_image_keys(triplets, per_condition=True)

    assert len(keys.items) == 6
    assert torch.equal(keys.items[keys.index], triplets[:, :3])
    assert torch.equal(keys.conditions[keys.index], triplets[:, 3:4].expand(-1, 3))


def test_batch_loads_each_image_once():
    requested = []

    class RecordingTensorizer:
        def __call__(self, item_ids):
            requested.append(item_ids.tolist())
            return torch.zeros(len(item_ids), 1, 8, 8)

    triplets = torch.tensor([[1, 2, 3, 0], [3, 2, 1, 1], [1, 4, 2, 0]])
    dataset = TripletBatchDataset(triplets, RecordingTensorizer(), per_condition=False)

    batch = dataset[torch.tensor([0, 1, 2])]

    assert requested == [[1, 2, 3, 4]]
    assert batch.images.shape[0] == 4
    assert batch.index.shape == (3, 3)
    assert batch.conditions.tolist() == [0, 1, 0]


def test_shuffled_batches_depend_on_seed_and_epoch():
    def order(seed, epoch):
        batches = ShuffledBatches(10, 4, seed)
        batches.set_epoch(epoch)
        return torch.cat(list(batches)).tolist()

    assert order(0, 1) == order(0, 1)
    assert order(0, 1) != order(0, 2)
    assert order(0, 1) != order(1, 1)
    assert sorted(order(0, 3)) == list(range(10))
    assert [len(rows) for rows in ShuffledBatches(10, 4, 0)] == [4, 4, 2]
