"""End-to-end training on generated coloured shapes."""

import logging

import pytest
import torch

from training.csn import (
    CSNConfig,
    ImageLoadError,
    TensorImageSource,
    TrainConfig,
    load_checkpoint,
    train,
)


def shapes_config(variant: str = "learned") -> CSNConfig:
    return CSNConfig(n_conditions=2, variant=variant, image_size=20, embedding_dim=16)


def quick_config(**overrides) -> TrainConfig:
    values = {"epochs": 2, "batch_size": 128, "lr": 3e-3, "max_triplets": 256, "seed": 0}
    return TrainConfig(**{**values, **overrides})


def run(shapes, model_config=None, train_config=None, **kwargs):
    return train(
        model_config or shapes_config(),
        train_config or quick_config(),
        train_triplets=kwargs.pop("train_triplets", shapes.train_triplets),
        val_triplets=kwargs.pop("val_triplets", shapes.val_triplets),
        image_source=kwargs.pop("image_source", shapes.source),
        conditions=kwargs.pop("conditions", shapes.conditions),
        progress=False,
        **kwargs,
    )


def test_learned_csn_separates_colour_and_shape(shapes):
    result = run(shapes, train_config=quick_config(epochs=6, max_triplets=None))

    # Validation triplets use items held out from training.
    best = result.history[result.best_epoch - 1]
    assert result.best_val_accuracy > 0.9
    assert best.val_per_condition["colour"] > 0.9
    assert best.val_per_condition["shape"] > 0.85
    assert result.history[-1].loss < result.history[0].loss


@pytest.mark.parametrize("variant", ["fixed", "standard", "task-specific"])
def test_variant_trains_one_epoch(shapes, variant):
    result = run(
        shapes,
        model_config=shapes_config(variant),
        train_config=quick_config(epochs=1, max_triplets=128),
    )

    assert len(result.history) == 1
    assert result.best_val_accuracy is not None
    assert result.model.config.variant == variant


def test_result_reports_run(shapes):
    result = run(shapes)

    assert result.device == "cpu"
    assert result.amp is False
    assert result.lr == 3e-3
    assert result.images_per_second > 0
    assert result.wall_time_s > 0
    assert [epoch.epoch for epoch in result.history] == [1, 2]
    assert result.history[1].lr == pytest.approx(3e-3 * 0.985)
    assert not result.model.training


def test_best_epoch_weights_are_returned(shapes):
    result = run(shapes, train_config=quick_config(epochs=3))

    accuracies = [epoch.val_accuracy for epoch in result.history]
    assert result.best_val_accuracy == max(accuracies)
    assert result.best_epoch == accuracies.index(max(accuracies)) + 1
    best_state = result.checkpoint.model_state
    assert all(
        torch.equal(value, best_state[key]) for key, value in result.model.state_dict().items()
    )


def test_no_validation_keeps_last_epoch(shapes):
    result = run(shapes, val_triplets=None)

    assert result.best_epoch == 2
    assert result.best_val_accuracy is None
    assert all(
        torch.equal(value, result.final_state[key])
        for key, value in result.model.state_dict().items()
    )


def test_early_stopping_stops(shapes):
    # With a learning rate of 1e-9 the validation accuracy cannot improve after the first epoch.
    result = run(shapes, train_config=quick_config(epochs=10, lr=1e-9, early_stopping_patience=2))

    assert result.stopped_early
    assert len(result.history) < 10


def test_on_epoch_false_stops(shapes):
    seen = []

    def stop_after_first(metrics):
        seen.append(metrics.epoch)
        return False

    result = run(shapes, train_config=quick_config(epochs=5), on_epoch=stop_after_first)

    assert seen == [1]
    assert result.stopped_early
    assert len(result.history) == 1


def test_max_triplets_subsamples(shapes):
    result = run(shapes, train_config=quick_config(epochs=1, max_triplets=100, batch_size=1000))

    assert result.history[0].images <= 100 * 3
    assert result.history[0].images < len(shapes.item_ids)


def test_missing_image_raises_with_id(shapes):
    images = torch.stack([shapes.source.load(item_id) for item_id in shapes.item_ids[1:]])
    source = TensorImageSource(images, shapes.item_ids[1:])
    missing = shapes.item_ids[0]
    triplets = torch.tensor([[missing, shapes.item_ids[1], shapes.item_ids[2], 0]])

    with pytest.raises(ImageLoadError, match=f"item {missing}"):
        run(shapes, image_source=source, train_triplets=triplets, val_triplets=None)


def test_wrong_condition_count_raises(shapes):
    with pytest.raises(ValueError, match="condition slugs"):
        run(shapes, conditions=["colour"])


def test_cuda_request_without_cuda_raises(shapes, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    with pytest.raises(RuntimeError, match="CUDA is not available"):
        run(shapes, train_config=quick_config(device="cuda"))


def test_epochs_are_logged(shapes, caplog):
    with caplog.at_level(logging.INFO, logger="training.csn.trainer"):
        run(shapes, train_config=quick_config(epochs=1))

    assert any("epoch 1/1" in message for message in caplog.messages)


def test_warm_start_maps_conditions_by_slug(shapes, tmp_path):
    path = tmp_path / "first.pt"
    run(shapes, checkpoint_path=path, train_config=quick_config(epochs=1))
    first = load_checkpoint(path)

    # The new run lists a new condition first, so "colour" moves from mask row 0 to row 1.
    config = CSNConfig(n_conditions=3, variant="learned", image_size=20, embedding_dim=16)
    triplets = shapes.train_triplets[:64].clone()
    triplets[:, 3] += 1
    result = run(
        shapes,
        model_config=config,
        train_config=quick_config(epochs=1, lr=1e-12),
        train_triplets=triplets,
        val_triplets=None,
        conditions=["texture", "colour", "shape"],
        init_checkpoint=path,
    )

    old_beta = first.model_state["condition_masks.beta"]
    new_beta = result.model.state_dict()["condition_masks.beta"]
    assert torch.allclose(new_beta[1], old_beta[0], atol=1e-6)
    assert torch.allclose(new_beta[2], old_beta[1], atol=1e-6)
    assert torch.allclose(
        result.model.state_dict()["network.head.weight"],
        first.model_state["network.head.weight"],
        atol=1e-6,
    )


def test_warm_start_rejects_other_architecture(shapes, tmp_path):
    path = tmp_path / "first.pt"
    run(shapes, checkpoint_path=path, train_config=quick_config(epochs=1))

    with pytest.raises(ValueError, match="embedding_dim"):
        run(
            shapes,
            model_config=CSNConfig(n_conditions=2, image_size=20, embedding_dim=8),
            train_config=quick_config(epochs=1),
            init_checkpoint=path,
        )


def test_worker_processes_match_main_process(shapes):
    in_process = run(shapes, train_config=quick_config(epochs=1))
    with_workers = run(shapes, train_config=quick_config(epochs=1, num_workers=1))

    for key, value in in_process.final_state.items():
        assert torch.equal(with_workers.final_state[key], value), key


def test_progress_bar_writes_to_stderr(shapes, capsys):
    train(
        shapes_config(),
        quick_config(epochs=1),
        train_triplets=shapes.train_triplets,
        val_triplets=None,
        image_source=shapes.source,
        conditions=shapes.conditions,
        progress=True,
    )

    assert "epoch 1" in capsys.readouterr().err
