"""Running a training run: from stored triplets to a published model version."""

import dataclasses
import logging
from pathlib import Path

from django.conf import settings as django_settings

from training import csn
from training.models import ModelVersion, TrainingRun
from training.services.data import TrainingData, default_model_settings, training_data_for
from training.services.runs import (
    RunNotRunning,
    published_model_version,
    training_run_claim,
    training_run_fail,
    training_run_heartbeat,
    training_run_succeed,
)

logger = logging.getLogger(__name__)

MODEL_FIELDS = {field.name for field in dataclasses.fields(csn.CSNConfig)} - {"n_conditions", "variant"}
TRAIN_FIELDS = {field.name for field in dataclasses.fields(csn.TrainConfig)}
RUN_FIELDS = {"warm_start", "publish"}


def validate_run_settings(settings: dict) -> None:
    """Raise ValueError naming any setting that is unknown or has an invalid value."""
    unknown = sorted(set(settings) - MODEL_FIELDS - TRAIN_FIELDS - RUN_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown training settings {unknown}; known are {sorted(MODEL_FIELDS | TRAIN_FIELDS | RUN_FIELDS)}"
        )

    model_values = {key: value for key, value in settings.items() if key in MODEL_FIELDS}
    train_values = {key: value for key, value in settings.items() if key in TRAIN_FIELDS}
    try:
        csn.CSNConfig(n_conditions=1, **model_values)
        csn.TrainConfig(**train_values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"invalid training settings {settings}: {error}") from error


def build_configs(*, run: TrainingRun, data: TrainingData) -> tuple[csn.CSNConfig, csn.TrainConfig]:
    validate_run_settings(run.settings)
    model_values = default_model_settings(dataset=run.dataset)
    model_values.update({key: value for key, value in run.settings.items() if key in MODEL_FIELDS})
    train_values = {key: value for key, value in run.settings.items() if key in TRAIN_FIELDS}

    model_config = csn.CSNConfig(n_conditions=len(data.conditions), variant=run.variant, **model_values)
    train_config = csn.TrainConfig(**train_values)
    return model_config, train_config


def warm_start_checkpoint(*, run: TrainingRun, model_config: csn.CSNConfig) -> str | None:
    """Return the published checkpoint to start from, when its architecture matches."""
    if not run.settings.get("warm_start", True):
        return None
    version = published_model_version(dataset=run.dataset)
    if version is None or not Path(version.checkpoint_path).exists():
        return None

    previous = csn.load_checkpoint(version.checkpoint_path).model_config
    same = all(
        getattr(previous, name) == getattr(model_config, name)
        for name in ("backbone", "embedding_dim", "variant", "in_channels", "image_size")
    )
    return version.checkpoint_path if same else None


def checkpoint_path_for(run: TrainingRun) -> Path:
    folder = Path(django_settings.CSN_MODEL_DIR) / run.dataset.slug
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"run-{run.pk}.pt"


def training_run_execute(*, run_id: int, progress: bool | None = None) -> ModelVersion | None:
    """Train a queued run; publish its model on success and record the error on failure.

    Returns None when the run was not queued (another worker took it, or it already ended).
    Re-raises the training error after recording it, so callers can report it too.
    """
    run = training_run_claim(run_id=run_id)
    if run is None:
        logger.info("run %s is not queued; nothing to do", run_id)
        return None

    try:
        return _train_and_publish(run, progress)
    except RunNotRunning:
        # The run already ended, usually failed as stale, so keep the error recorded then.
        raise
    except Exception as error:
        training_run_fail(run=run, error=error)
        raise


def _train_and_publish(run: TrainingRun, progress: bool | None) -> ModelVersion:
    data = training_data_for(dataset=run.dataset)
    model_config, train_config = build_configs(run=run, data=data)
    init_checkpoint = warm_start_checkpoint(run=run, model_config=model_config)
    logger.info(
        "run %s of dataset %s: %d triplets (%d held out), variant %s, backbone %s, warm start %s",
        run.pk, run.dataset.slug, len(data.triplets), int(data.held_out.sum()), run.variant,
        model_config.backbone, init_checkpoint or "none",
    )

    # NOTE: the heartbeat comes once per epoch, so an epoch longer than CSN_RUN_HEARTBEAT_TIMEOUT
    # gets the run marked failed while it still trains; raise the timeout for large datasets.
    def on_epoch(metrics: csn.EpochMetrics) -> None:
        training_run_heartbeat(run=run, metrics={"history": [metrics.to_dict()]})

    result = csn.train(
        model_config,
        train_config,
        train_triplets=data.train_triplets,
        val_triplets=data.test_triplets,
        image_source=csn.PathImageSource(data.image_paths),
        conditions=data.conditions,
        item_ids=sorted(data.image_paths),
        init_checkpoint=init_checkpoint,
        checkpoint_path=checkpoint_path_for(run),
        progress=progress,
        on_epoch=on_epoch,
    )
    metrics = run_metrics(result=result, data=data, train_config=train_config)
    return training_run_succeed(
        run=run, metrics=metrics, checkpoint_path=str(result.checkpoint_path),
        triplet_count=len(data.triplets), publish=run.settings.get("publish", True),
    )


def run_metrics(*, result: csn.TrainResult, data: TrainingData, train_config: csn.TrainConfig) -> dict:
    """Summarise a finished run: held-out accuracy, masks, speed and the epoch history."""
    best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
    masks = csn.mask_statistics(result.model)
    trained_on = min(len(data.train_triplets), train_config.max_triplets or len(data.train_triplets))
    return {
        "held_out_accuracy": result.best_val_accuracy,
        "held_out_per_condition": best.val_per_condition,
        "held_out_triplets": int(data.held_out.sum()),
        "train_triplets": int(trained_on),
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "images_per_second": round(result.images_per_second, 1),
        "wall_time_s": round(result.wall_time_s, 1),
        "device": result.device,
        "amp": result.amp,
        "mask_sparsity": dict(zip(data.conditions, masks.sparsity)),
        "mask_cosine": masks.cosine,
        "conditions": data.conditions,
        "history": [epoch.to_dict() for epoch in result.history],
    }
