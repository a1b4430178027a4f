"""Checkpoint files: configs, condition slugs, item ids, metrics, weights and resume state.

A checkpoint is a dict of plain Python values and tensors saved with `torch.save`, so
`torch.load(..., weights_only=True)` can read it without unpickling arbitrary objects. Keys:

- format_version: int
- model_config, train_config: dicts of `CSNConfig` and `TrainConfig` fields
- conditions: {condition slug: mask row}
- item_ids: list of the item ids the model was trained on
- metrics: dict with best_epoch, best_val_accuracy and history (one dict per epoch)
- model_state: the model's state dict at the best epoch
- resume: None, or dict with epoch (completed epochs), model_state (weights after that epoch),
  optimizer_state, scheduler_state, scaler_state, rng_state and epochs_without_improvement
- versions: torch, torchvision, numpy and python versions that wrote the file
- created_at: ISO 8601 UTC time
"""

from __future__ import annotations

import datetime
import logging
import os
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

from .config import CSNConfig, TrainConfig
from .model import TripletModel, build_model

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def package_versions() -> dict[str, str]:
    # str() turns torch's TorchVersion into a plain string, which weights_only loading accepts.
    return {
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "numpy": str(np.__version__),
        "python": platform.python_version(),
    }


@dataclass
class Checkpoint:
    """A checkpoint in memory. `conditions` lists the condition slugs in mask-row order."""

    model_config: CSNConfig
    conditions: list[str]
    item_ids: list[int]
    model_state: dict[str, torch.Tensor] = field(repr=False)
    train_config: TrainConfig | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    resume: dict[str, Any] | None = field(default=None, repr=False)
    versions: dict[str, str] = field(default_factory=package_versions)
    created_at: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat())

    def __post_init__(self) -> None:
        if len(self.conditions) != self.model_config.n_conditions:
            raise ValueError(
                f"checkpoint has {len(self.conditions)} condition slugs but the model has "
                f"{self.model_config.n_conditions} conditions"
            )
        if len(set(self.conditions)) != len(self.conditions):
            raise ValueError(f"condition slugs must be distinct, got {self.conditions}")

    @property
    def condition_rows(self) -> dict[str, int]:
        return {slug: row for row, slug in enumerate(self.conditions)}

    def build_model(
        self, device: str | torch.device = "cpu", *, state: str = "best"
    ) -> TripletModel:
        """Rebuild the model in eval mode, with the best (`state="best"`) or last epoch's weights."""
        if state == "best":
            weights = self.model_state
        elif state == "last":
            if self.resume is None:
                raise ValueError(
                    "this checkpoint has no resume state, so only state='best' is available"
                )
            weights = self.resume["model_state"]
        else:
            raise ValueError(f"invalid state {state!r}; expected 'best' or 'last'")

        model = build_model(self.model_config, load_pretrained=False)
        model.load_state_dict(weights)
        return model.to(device).eval()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "model_config": self.model_config.to_dict(),
            "train_config": None if self.train_config is None else self.train_config.to_dict(),
            "conditions": self.condition_rows,
            "item_ids": [int(item_id) for item_id in self.item_ids],
            "metrics": self.metrics,
            "model_state": dict(self.model_state),
            "resume": self.resume,
            "versions": self.versions,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Checkpoint:
        version = values.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"unsupported checkpoint format_version {version!r}; this code reads version {FORMAT_VERSION}"
            )
        rows: dict[str, int] = values["conditions"]
        train_config = values.get("train_config")
        return cls(
            model_config=CSNConfig.from_dict(values["model_config"]),
            train_config=None if train_config is None else TrainConfig.from_dict(train_config),
            conditions=sorted(rows, key=rows.__getitem__),
            item_ids=list(values["item_ids"]),
            metrics=values.get("metrics") or {},
            model_state=values["model_state"],
            resume=values.get("resume"),
            versions=values.get("versions") or {},
            created_at=values.get("created_at", ""),
        )


def save_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike) -> Path:
    """Write the checkpoint to `path` atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(checkpoint.to_dict(), temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    logger.debug("saved checkpoint %s", path)
    return path


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`, with torch.load(weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    values = torch.load(path, map_location=map_location, weights_only=True)
    return Checkpoint.from_dict(values)
