"""Device, mixed precision and pinned memory choices, checked on a CPU-only machine."""

import pytest
import torch

from training.csn import TrainConfig, resolve_amp, resolve_device, resolve_pin_memory


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_picks_cpu_without_cuda(no_cuda):
    assert resolve_device("auto") == torch.device("cpu")


def test_auto_picks_cuda_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    assert resolve_device("auto") == torch.device("cuda")


def test_cuda_without_cuda_raises(no_cuda):
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")


def test_cuda_index_without_cuda_raises(no_cuda):
    with pytest.raises(RuntimeError, match="'cuda:1'"):
        resolve_device("cuda:1")


def test_cpu_is_cpu():
    assert resolve_device("cpu") == torch.device("cpu")


def test_unsupported_device_raises():
    with pytest.raises(ValueError, match="unsupported device"):
        resolve_device("meta")


def test_amp_defaults_off_on_cpu():
    assert resolve_amp(None, torch.device("cpu")) is False


def test_amp_request_ignored_on_cpu():
    assert resolve_amp(True, torch.device("cpu")) is False


def test_amp_defaults_on_for_cuda():
    assert resolve_amp(None, torch.device("cuda")) is True
    assert resolve_amp(False, torch.device("cuda")) is False


def test_pin_memory_only_on_cuda():
    assert resolve_pin_memory(None, torch.device("cpu")) is False
    assert resolve_pin_memory(True, torch.device("cpu")) is False
    assert resolve_pin_memory(None, torch.device("cuda")) is True


def test_train_config_rejects_unknown_device():
    with pytest.raises(ValueError, match="invalid device"):
        TrainConfig(device="tpu")
