"""Training loop: Adam with exponential learning-rate decay, best-epoch selection and checkpoints."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .config import CSNConfig, TrainConfig
from .data import (
    ImageSource,
    ImageTensorizer,
    ShuffledBatches,
    TripletBatch,
    TripletBatchDataset,
    as_triplets,
    build_transform,
    epoch_seed,
)
from .device import configure_threads, resolve_amp, resolve_device, resolve_pin_memory
from .evaluate import triplet_accuracy
from .loss import LossWeights, triplet_loss
from .model import TripletModel, build_model, triplet_distances
from .warm_start import warm_start

logger = logging.getLogger(__name__)

CheckpointSource = str | Path | Checkpoint


@dataclass
class EpochMetrics:
    """Results of one epoch. Losses are means over its training triplets."""

    epoch: int
    lr: float
    loss: float
    hinge: float
    embedding_norm: float
    mask_l1: float
    train_accuracy: float
    val_accuracy: float | None
    val_per_condition: dict[str, float]
    images: int
    seconds: float
    images_per_second: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """A finished run.

    `model` contains the best epoch's weights and is in eval mode. `final_state` contains the
    weights after the last epoch.
    """

    model: TripletModel
    final_state: dict[str, torch.Tensor]
    checkpoint: Checkpoint
    checkpoint_path: Path | None
    history: list[EpochMetrics]
    best_epoch: int
    best_val_accuracy: float | None
    stopped_early: bool
    images_per_second: float
    wall_time_s: float
    device: str
    amp: bool
    lr: float


@dataclass
class _Progress:
    """Mutable state of a run, saved in checkpoints so a resumed run continues exactly."""

    epoch: int = 0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    best_epoch: int = 0
    best_val_accuracy: float | None = None
    epochs_without_improvement: int = 0
    history: list[EpochMetrics] = field(default_factory=list)


@dataclass
class _Run:
    """Everything the epoch loop needs, resolved once at the start of `train`."""

    model: TripletModel
    model_config: CSNConfig
    config: TrainConfig
    device: torch.device
    amp: bool
    pin_memory: bool
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    weights: LossWeights
    conditions: list[str]
    item_ids: list[int]
    eval_images: ImageTensorizer
    show_progress: bool


def train(
    model_config: CSNConfig,
    train_config: TrainConfig,
    *,
    train_triplets: torch.Tensor | np.ndarray,
    val_triplets: torch.Tensor | np.ndarray | None,
    image_source: ImageSource,
    conditions: Sequence[str],
    item_ids: Sequence[int] | None = None,
    init_checkpoint: CheckpointSource | None = None,
    resume_checkpoint: CheckpointSource | None = None,
    checkpoint_path: str | Path | None = None,
    progress: bool | None = None,
    on_epoch: Callable[[EpochMetrics], bool | None] | None = None,
) -> TrainResult:
    """Train a CSN on triplets (N, 4) of anchor, closer, farther item ids and condition row.

    `conditions` lists condition slugs in mask-row order. After every epoch the model is scored
    on `val_triplets`, and the epoch with the highest validation accuracy is kept as the best.
    Without validation triplets the last epoch is the best. `init_checkpoint` warm-starts from
    another run's best weights. `resume_checkpoint` continues a run from its last completed epoch,
    with optimizer, scheduler and RNG state. `checkpoint_path` is rewritten after every epoch.
    `progress` None shows a tqdm bar only when stderr is a terminal. `on_epoch` is called after
    every epoch, and returning False from it stops training.

    The global torch RNG is seeded from `train_config.seed` (random augmentation draws from it).
    On the CPU with num_workers=0 and a fixed thread count, a resumed run matches an uninterrupted
    one exactly.
    """
    started = time.perf_counter()
    if init_checkpoint is not None and resume_checkpoint is not None:
        raise ValueError("pass init_checkpoint or resume_checkpoint, not both")
    conditions = _check_conditions(conditions, model_config)

    run, train_triplets, val_triplets, train_images = _prepare_run(
        model_config,
        train_config,
        train_triplets,
        val_triplets,
        image_source,
        conditions,
        item_ids,
        progress,
    )
    state = _start_state(run, init_checkpoint, resume_checkpoint)

    dataset = TripletBatchDataset(
        train_triplets, train_images, per_condition=not run.model.shares_embedding
    )
    sampler = ShuffledBatches(len(train_triplets), train_config.batch_size, train_config.seed)
    logger.info(
        "training %s CSN (%s backbone) on %s: %d training and %d validation triplets, %d conditions, epochs %d-%d",
        model_config.variant,
        model_config.backbone,
        run.device,
        len(train_triplets),
        len(val_triplets),
        len(conditions),
        state.epoch + 1,
        train_config.epochs,
    )

    stopped_early = False
    for epoch in range(state.epoch + 1, train_config.epochs + 1):
        sampler.set_epoch(epoch)
        metrics = _train_epoch(run, dataset, sampler, epoch)
        run.scheduler.step()

        if len(val_triplets):
            report = triplet_accuracy(
                run.model,
                run.eval_images,
                val_triplets,
                conditions=conditions,
                batch_size=train_config.eval_batch_size,
                device=run.device,
                amp=run.amp,
            )
            metrics.val_accuracy = report.overall
            metrics.val_per_condition = {
                str(key): value for key, value in report.per_condition.items()
            }

        _record_epoch(run, state, metrics)
        if checkpoint_path is not None:
            save_checkpoint(_make_checkpoint(run, state), checkpoint_path)
        _log_epoch(metrics, train_config.epochs)

        stop_requested = on_epoch is not None and on_epoch(metrics) is False
        patience = train_config.early_stopping_patience
        out_of_patience = patience is not None and state.epochs_without_improvement >= patience
        if stop_requested or out_of_patience:
            stopped_early = epoch < train_config.epochs
            logger.info(
                "stopping after epoch %d: %s",
                epoch,
                "on_epoch returned False" if stop_requested else "no improvement",
            )
            break

    return _finish(run, state, checkpoint_path, stopped_early, time.perf_counter() - started)


def _check_conditions(conditions: Sequence[str], model_config: CSNConfig) -> list[str]:
    conditions = list(conditions)
    if len(conditions) != model_config.n_conditions:
        raise ValueError(
            f"got {len(conditions)} condition slugs for a model with {model_config.n_conditions} conditions"
        )
    if len(set(conditions)) != len(conditions):
        raise ValueError(f"condition slugs must be distinct, got {conditions}")
    return conditions


def _prepare_run(
    model_config: CSNConfig,
    config: TrainConfig,
    train_triplets: torch.Tensor | np.ndarray,
    val_triplets: torch.Tensor | np.ndarray | None,
    image_source: ImageSource,
    conditions: list[str],
    item_ids: Sequence[int] | None,
    progress: bool | None,
) -> tuple[_Run, torch.Tensor, torch.Tensor, ImageTensorizer]:
    configure_threads(config.num_threads)
    device = resolve_device(config.device)
    amp = resolve_amp(config.amp, device)
    torch.manual_seed(config.seed)

    train_triplets = _subsample(as_triplets(train_triplets, model_config.n_conditions), config)
    val_triplets = as_triplets(
        [] if val_triplets is None else val_triplets, model_config.n_conditions
    )
    if len(train_triplets) == 0:
        raise ValueError("no training triplets")
    if item_ids is None:
        item_ids = torch.unique(
            torch.cat([train_triplets[:, :3], val_triplets[:, :3]]).reshape(-1)
        ).tolist()

    model = build_model(model_config, seed=config.seed).to(device)
    lr = config.learning_rate(model_config)
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=lr, weight_decay=config.weight_decay)

    augmenting = config.horizontal_flip or config.random_crop
    eval_images = ImageTensorizer(
        image_source, model_config, build_transform(model_config), cache=config.cache_images
    )
    train_images = eval_images
    if augmenting:
        transform = build_transform(
            model_config, horizontal_flip=config.horizontal_flip, random_crop=config.random_crop
        )
        train_images = ImageTensorizer(image_source, model_config, transform)

    run = _Run(
        model=model,
        model_config=model_config,
        config=config,
        device=device,
        amp=amp,
        pin_memory=resolve_pin_memory(config.pin_memory, device),
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay),
        scaler=torch.amp.GradScaler(device.type, enabled=amp),
        weights=LossWeights(
            margin=config.margin, lambda_e=config.lambda_e, lambda_m=config.lambda_m
        ),
        conditions=conditions,
        item_ids=[int(item_id) for item_id in item_ids],
        eval_images=eval_images,
        show_progress=sys.stderr.isatty() if progress is None else progress,
    )
    return run, train_triplets, val_triplets, train_images


def _subsample(triplets: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    if config.max_triplets is None or len(triplets) <= config.max_triplets:
        return triplets
    generator = np.random.default_rng(config.seed)
    rows = np.sort(generator.choice(len(triplets), size=config.max_triplets, replace=False))
    logger.info("training on a random %d of %d triplets", config.max_triplets, len(triplets))
    return triplets[torch.from_numpy(rows)]


def _load(source: CheckpointSource) -> Checkpoint:
    return source if isinstance(source, Checkpoint) else load_checkpoint(source, map_location="cpu")


def _start_state(
    run: _Run, init_checkpoint: CheckpointSource | None, resume_checkpoint: CheckpointSource | None
) -> _Progress:
    if init_checkpoint is not None:
        warm_start(run.model, _load(init_checkpoint), run.conditions)
        if not isinstance(init_checkpoint, Checkpoint):
            logger.info("warm-started from checkpoint %s", init_checkpoint)

    if resume_checkpoint is None:
        return _Progress(best_state=_cpu_state(run.model))
    return _restore(run, _load(resume_checkpoint))


def _restore(run: _Run, checkpoint: Checkpoint) -> _Progress:
    if checkpoint.resume is None:
        raise ValueError(
            "the checkpoint has no resume state; pass it as init_checkpoint to warm-start instead"
        )
    if checkpoint.model_config != run.model_config:
        raise ValueError(
            f"cannot resume: checkpoint model config {checkpoint.model_config} differs from {run.model_config}"
        )
    if checkpoint.conditions != run.conditions:
        raise ValueError(
            f"cannot resume: checkpoint conditions {checkpoint.conditions} differ from {run.conditions}"
        )

    resume = checkpoint.resume
    run.model.load_state_dict(resume["model_state"])
    run.optimizer.load_state_dict(resume["optimizer_state"])
    run.scheduler.load_state_dict(resume["scheduler_state"])
    if resume.get("scaler_state"):
        run.scaler.load_state_dict(resume["scaler_state"])
    _set_rng_state(resume["rng_state"])

    metrics = checkpoint.metrics
    history = [EpochMetrics(**values) for values in metrics.get("history", [])]
    logger.info("resuming after epoch %d", resume["epoch"])
    return _Progress(
        epoch=resume["epoch"],
        best_state=dict(checkpoint.model_state),
        best_epoch=metrics.get("best_epoch", 0),
        best_val_accuracy=metrics.get("best_val_accuracy"),
        epochs_without_improvement=resume.get("epochs_without_improvement", 0),
        history=history,
    )


def _train_epoch(
    run: _Run, dataset: TripletBatchDataset, sampler: ShuffledBatches, epoch: int
) -> EpochMetrics:
    loader = DataLoader(
        dataset,
        batch_size=None,
        sampler=sampler,
        num_workers=run.config.num_workers,
        pin_memory=run.pin_memory,
        generator=torch.Generator().manual_seed(epoch_seed(run.config.seed, epoch)),
    )
    lr = run.optimizer.param_groups[0]["lr"]
    totals = {"total": 0.0, "hinge": 0.0, "embedding_norm": 0.0, "mask_l1": 0.0}
    n_triplets = n_correct = n_images = 0

    run.model.train()
    started = time.perf_counter()
    batches = tqdm(
        loader,
        total=len(sampler),
        desc=f"epoch {epoch}",
        leave=False,
        disable=not run.show_progress,
    )
    for batch in batches:
        losses, correct = _train_step(run, batch)
        size = len(batch.conditions)
        for name, value in losses.items():
            totals[name] += value * size
        n_triplets += size
        n_correct += correct
        n_images += len(batch.images)
        batches.set_postfix(loss=f"{losses['total']:.4f}")
    seconds = time.perf_counter() - started

    return EpochMetrics(
        epoch=epoch,
        lr=lr,
        loss=totals["total"] / n_triplets,
        hinge=totals["hinge"] / n_triplets,
        embedding_norm=totals["embedding_norm"] / n_triplets,
        mask_l1=totals["mask_l1"] / n_triplets,
        train_accuracy=n_correct / n_triplets,
        val_accuracy=None,
        val_per_condition={},
        images=n_images,
        seconds=seconds,
        images_per_second=n_images / seconds if seconds > 0 else math.inf,
    )


def _train_step(run: _Run, batch: TripletBatch) -> tuple[dict[str, float], int]:
    """Run one optimisation step and return the loss terms and the count of correctly ordered triplets."""
    device = run.device
    images = batch.images.to(device, non_blocking=run.pin_memory)
    image_conditions = batch.image_conditions.to(device)
    index = batch.index.to(device)
    conditions = batch.conditions.to(device)

    # NOTE: the CUDA path (float16 autocast, GradScaler, pinned memory) is not covered by the
    # tests in tests/csn, which run on the CPU only.
    with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=run.amp):
        image_embeddings = run.model.embed(images, image_conditions)

    closer, farther, embeddings = triplet_distances(run.model, image_embeddings, index, conditions)
    batch_masks = run.model.masks()[conditions] if run.model.masks_trainable else None
    loss = triplet_loss(closer, farther, embeddings, batch_masks, run.weights)

    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss.total).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()

    correct = int((closer.detach() < farther.detach()).sum())
    return loss.as_floats(), correct


def _record_epoch(run: _Run, state: _Progress, metrics: EpochMetrics) -> None:
    state.epoch = metrics.epoch
    state.history.append(metrics)
    accuracy = metrics.val_accuracy
    improved = (
        accuracy is None or state.best_val_accuracy is None or accuracy > state.best_val_accuracy
    )
    if improved:
        state.best_state = _cpu_state(run.model)
        state.best_epoch = metrics.epoch
        state.best_val_accuracy = accuracy
        state.epochs_without_improvement = 0
    else:
        state.epochs_without_improvement += 1


def _make_checkpoint(run: _Run, state: _Progress) -> Checkpoint:
    resume = {
        "epoch": state.epoch,
        "model_state": _cpu_state(run.model),
        "optimizer_state": run.optimizer.state_dict(),
        "scheduler_state": run.scheduler.state_dict(),
        "scaler_state": run.scaler.state_dict(),
        "rng_state": _get_rng_state(),
        "epochs_without_improvement": state.epochs_without_improvement,
    }
    metrics = {
        "best_epoch": state.best_epoch,
        "best_val_accuracy": state.best_val_accuracy,
        "history": [epoch.to_dict() for epoch in state.history],
    }
    return Checkpoint(
        model_config=run.model_config,
        train_config=run.config,
        conditions=run.conditions,
        item_ids=run.item_ids,
        model_state=state.best_state,
        metrics=metrics,
        resume=resume,
    )


def _finish(
    run: _Run,
    state: _Progress,
    checkpoint_path: str | Path | None,
    stopped_early: bool,
    wall_time: float,
) -> TrainResult:
    checkpoint = _make_checkpoint(run, state)
    final_state = checkpoint.resume["model_state"]
    run.model.load_state_dict(state.best_state)
    run.model.eval()

    images = sum(epoch.images for epoch in state.history)
    seconds = sum(epoch.seconds for epoch in state.history)
    logger.info(
        "training finished in %.1f s: best epoch %d, validation accuracy %s",
        wall_time,
        state.best_epoch,
        "n/a" if state.best_val_accuracy is None else f"{state.best_val_accuracy:.4f}",
    )
    return TrainResult(
        model=run.model,
        final_state=final_state,
        checkpoint=checkpoint,
        checkpoint_path=Path(checkpoint_path) if checkpoint_path is not None else None,
        history=state.history,
        best_epoch=state.best_epoch,
        best_val_accuracy=state.best_val_accuracy,
        stopped_early=stopped_early,
        images_per_second=images / seconds if seconds > 0 else 0.0,
        wall_time_s=wall_time,
        device=str(run.device),
        amp=run.amp,
        lr=run.config.learning_rate(run.model_config),
    )


def _log_epoch(metrics: EpochMetrics, epochs: int) -> None:
    validation = "n/a" if metrics.val_accuracy is None else f"{metrics.val_accuracy:.4f}"
    logger.info(
        "epoch %d/%d: loss %.4f (hinge %.4f), train accuracy %.4f, validation accuracy %s, %.0f images/s",
        metrics.epoch,
        epochs,
        metrics.loss,
        metrics.hinge,
        metrics.train_accuracy,
        validation,
        metrics.images_per_second,
    )


def _cpu_state(model: TripletModel) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}


def _get_rng_state() -> dict[str, Any]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def _set_rng_state(rng_state: dict[str, Any]) -> None:
    torch.set_rng_state(rng_state["torch"])
    if rng_state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng_state["cuda"])
