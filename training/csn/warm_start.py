"""Initialising a model from an earlier checkpoint whose conditions may differ."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import torch

from .checkpoint import Checkpoint
from .model import TripletModel

logger = logging.getLogger(__name__)

LEARNED_MASK_KEY = "condition_masks.beta"
TASK_NETWORK_KEY = re.compile(r"^networks\.(\d+)\.(.+)$")
# Config fields that must match for weights to transfer. n_conditions and mask init may differ.
ARCHITECTURE_FIELDS = ("backbone", "embedding_dim", "variant", "in_channels")


def warm_start(model: TripletModel, checkpoint: Checkpoint, conditions: Sequence[str]) -> None:
    """Copy the checkpoint's best weights into `model`, matching per-condition weights by slug.

    Backbone and head weights are copied as they are. Learned mask rows and task-specific networks
    are copied for every condition slug that the checkpoint also has. New conditions keep their
    fresh initialisation. Fixed and all-ones masks follow from the config, so they are not copied.
    """
    for name in ARCHITECTURE_FIELDS:
        old, new = getattr(checkpoint.model_config, name), getattr(model.config, name)
        if old != new:
            raise ValueError(
                f"cannot warm-start: checkpoint has {name}={old!r} but the model has {name}={new!r}"
            )

    old_rows = checkpoint.condition_rows
    row_map = {
        new_row: old_rows[slug] for new_row, slug in enumerate(conditions) if slug in old_rows
    }
    new_slugs = [slug for slug in conditions if slug not in old_rows]
    if new_slugs:
        logger.info("warm start: conditions %s are new and keep their initial weights", new_slugs)

    source = checkpoint.model_state
    state = model.state_dict()
    for key, value in state.items():
        copied = _transferred_value(key, value, source, row_map)
        if copied is not None:
            state[key] = copied
    model.load_state_dict(state)


def _transferred_value(
    key: str, value: torch.Tensor, source: dict[str, torch.Tensor], row_map: dict[int, int]
) -> torch.Tensor | None:
    if key == LEARNED_MASK_KEY:
        if key not in source:
            return None
        result = value.clone()
        for new_row, old_row in row_map.items():
            result[new_row] = source[key][old_row].to(value)
        return result

    if key.startswith("condition_masks."):
        return None

    match = TASK_NETWORK_KEY.match(key)
    if match:
        old_row = row_map.get(int(match.group(1)))
        if old_row is None:
            return None
        key = f"networks.{old_row}.{match.group(2)}"

    if key not in source:
        raise ValueError(f"cannot warm-start: checkpoint has no weight {key!r}")
    if source[key].shape != value.shape:
        raise ValueError(
            f"cannot warm-start: {key!r} has shape {tuple(source[key].shape)} in the checkpoint "
            f"but {tuple(value.shape)} in the model"
        )
    return source[key].to(value)
