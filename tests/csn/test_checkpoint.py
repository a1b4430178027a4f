"""Checkpoint files: contents, round trip and exact resume."""

import pytest
import torch

from training.csn import CSNConfig, TrainConfig, embed_items, load_checkpoint, train
from training.csn.checkpoint import FORMAT_VERSION

MODEL_CONFIG = CSNConfig(n_conditions=2, variant="learned", image_size=20, embedding_dim=16)


def train_shapes(shapes, epochs, **kwargs):
    # Random flips make the resume test depend on restoring the global RNG state.
    config = TrainConfig(
        epochs=epochs, batch_size=64, lr=3e-3, max_triplets=192, seed=7, horizontal_flip=True
    )
    return train(
        MODEL_CONFIG,
        config,
        train_triplets=shapes.train_triplets,
        val_triplets=shapes.val_triplets[:100],
        image_source=shapes.source,
        conditions=shapes.conditions,
        progress=False,
        **kwargs,
    )


def test_checkpoint_contents(shapes, tmp_path):
    path = tmp_path / "model.pt"
    train_shapes(shapes, 2, checkpoint_path=path)

    raw = torch.load(path, weights_only=True)

    assert raw["format_version"] == FORMAT_VERSION
    assert raw["conditions"] == {"colour": 0, "shape": 1}
    assert raw["model_config"]["embedding_dim"] == 16
    assert raw["train_config"]["seed"] == 7
    assert set(raw["versions"]) == {"torch", "torchvision", "numpy", "python"}
    assert raw["created_at"]
    assert len(raw["metrics"]["history"]) == 2
    assert raw["resume"]["epoch"] == 2
    assert set(raw["item_ids"]) <= set(shapes.item_ids)


def test_checkpoint_round_trip_same_embeddings(shapes, tmp_path):
    path = tmp_path / "model.pt"
    result = train_shapes(shapes, 2, checkpoint_path=path)

    checkpoint = load_checkpoint(path)
    loaded = checkpoint.build_model()

    items = shapes.item_ids[:12]
    original = embed_items(result.model, shapes.source, items)
    reloaded = embed_items(loaded, shapes.source, items)
    assert torch.equal(original, reloaded)
    assert torch.equal(loaded.masks(), result.model.masks())
    assert checkpoint.condition_rows == {"colour": 0, "shape": 1}
    assert checkpoint.model_config == MODEL_CONFIG
    assert checkpoint.metrics["best_epoch"] == result.best_epoch


def test_resume_matches_uninterrupted_run(shapes, tmp_path):
    uninterrupted = train_shapes(shapes, 4)

    path = tmp_path / "partial.pt"
    train_shapes(shapes, 2, checkpoint_path=path)
    resumed = train_shapes(shapes, 4, resume_checkpoint=path)

    for key, value in uninterrupted.final_state.items():
        assert torch.equal(resumed.final_state[key], value), key
    assert [epoch.epoch for epoch in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[3].loss == uninterrupted.history[3].loss
    assert resumed.best_epoch == uninterrupted.best_epoch


def test_resume_rejects_other_conditions(shapes, tmp_path):
    path = tmp_path / "partial.pt"
    train_shapes(shapes, 1, checkpoint_path=path)

    with pytest.raises(ValueError, match="conditions"):
        train(
            MODEL_CONFIG,
            TrainConfig(epochs=2),
            train_triplets=shapes.train_triplets,
            val_triplets=None,
            image_source=shapes.source,
            conditions=["shape", "colour"],
            resume_checkpoint=path,
            progress=False,
        )


def test_missing_checkpoint_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt")
