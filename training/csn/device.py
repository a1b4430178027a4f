"""Choice of device, mixed precision and pinned memory for training and evaluation."""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


def resolve_device(requested: str | torch.device = "auto") -> torch.device:
    """Return the device for `requested`: "auto" picks CUDA when available, else the CPU.

    Raises RuntimeError when CUDA is requested but torch cannot use it.
    """
    if isinstance(requested, torch.device):
        requested = str(requested)
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {requested!r} was requested but CUDA is not available to torch {torch.__version__}; "
                "use device='cpu' or 'auto', or install a CUDA build of torch on a machine with an NVIDIA GPU"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {requested!r} was requested but only {torch.cuda.device_count()} CUDA devices exist"
            )
    elif device.type != "cpu":
        raise ValueError(
            f"unsupported device {requested!r}; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
        )
    return device


def resolve_amp(requested: bool | None, device: torch.device) -> bool:
    """Return whether to use float16 autocast: by default on CUDA only, and never on the CPU."""
    if requested is None:
        return device.type == "cuda"
    if requested and device.type != "cuda":
        logger.warning(
            "mixed precision was requested but training runs on %s; training in float32", device
        )
        return False
    return requested


def resolve_pin_memory(requested: bool | None, device: torch.device) -> bool:
    """Return whether data loaders pin memory: by default on CUDA only, and never on the CPU."""
    if device.type != "cuda":
        return False
    return True if requested is None else requested


def configure_threads(num_threads: int | None) -> None:
    """Set the process-wide number of CPU threads torch uses, when `num_threads` is given."""
    if num_threads is None:
        return
    if num_threads < 1:
        raise ValueError(f"num_threads must be at least 1, got {num_threads}")
    torch.set_num_threads(num_threads)
    logger.info("torch uses %d CPU threads", num_threads)
