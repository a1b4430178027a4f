"""Image backbones that map a batch of images to one feature vector per image.

Pretrained weights are never downloaded here. They come from a local state dict file or from
torchvision's download cache, and a missing file raises `PretrainedWeightsNotFound` naming the
path to put it at.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torchvision
from torch import nn

logger = logging.getLogger(__name__)

SMALL_CNN = "small-cnn"
RESNET18_LAYER3 = "resnet18-layer3"
TORCHVISION_PREFIX = "tv:"
BACKBONE_NAMES = (SMALL_CNN, RESNET18_LAYER3, f"{TORCHVISION_PREFIX}<torchvision model name>")

SMALL_CNN_CHANNELS = (32, 64, 128, 128)


class PretrainedWeightsNotFound(FileNotFoundError):
    """Raised when a pretrained state dict file is not on disk."""


class RepeatChannels(nn.Module):
    """Repeat a one-channel image to three channels, for networks built for RGB input.

    Feeding the repeated grey image is the same as summing the first convolution's weights over
    its RGB inputs, so RGB-pretrained weights keep their meaning on greyscale images.
    """

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.expand(-1, self.channels, -1, -1)


def build_backbone(
    name: str, *, in_channels: int = 3, pretrained: str | os.PathLike | None = None
) -> tuple[nn.Module, int]:
    """Build the named backbone and return it with the length of its feature vector.

    Names: "small-cnn" (four conv/BN/ReLU/max-pool blocks and global average pooling, for small
    greyscale glyphs), "resnet18-layer3" (torchvision's ResNet-18 up to layer3 with adaptive
    average pooling, 256 features, as in the CSN reference code), and "tv:<name>" for any
    torchvision classification model with its classifier head removed.

    `pretrained` is None, "torchvision" (the model's default weights from torchvision's cache) or
    a path to a state dict. For torchvision models the state dict is that of the whole
    classification model, head included. For "small-cnn" it is the backbone's own state dict.
    Torchvision backbones accept in_channels 1 (repeated to RGB) or 3.
    """
    if name == SMALL_CNN:
        return _build_small_cnn(in_channels, pretrained)

    if name == RESNET18_LAYER3:
        model = _build_torchvision_model("resnet18", pretrained)
        layers = [
            model.conv1,
            model.bn1,
            model.relu,
            model.maxpool,
            model.layer1,
            model.layer2,
            model.layer3,
        ]
        trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        return _adapt_channels(trunk, in_channels, name), 256

    if name.startswith(TORCHVISION_PREFIX):
        model_name = name[len(TORCHVISION_PREFIX) :]
        model = _build_torchvision_model(model_name, pretrained)
        feature_dim = _remove_classifier(model, model_name)
        return _adapt_channels(model, in_channels, name), feature_dim

    raise ValueError(f"unknown backbone {name!r}; expected one of {BACKBONE_NAMES}")


def torchvision_weights_path(model_name: str) -> tuple[Path, str]:
    """Return where torchvision caches the model's default weights, and the URL they come from."""
    try:
        weights = torchvision.models.get_model_weights(model_name).DEFAULT
    except ValueError as error:
        raise ValueError(
            f"torchvision has no pretrained weights for {model_name!r}: {error}"
        ) from error
    url = weights.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url), url


def load_state_dict_file(
    path: str | os.PathLike, *, source: str | None = None
) -> dict[str, torch.Tensor]:
    """Load a state dict from a local file, raising PretrainedWeightsNotFound when it is missing."""
    path = Path(path)
    if not path.is_file():
        where = f" It normally comes from {source}." if source else ""
        raise PretrainedWeightsNotFound(
            f"pretrained weights not found: put the state dict file at {path}.{where} "
            "Nothing is downloaded at training time."
        )
    logger.info("loading pretrained weights from %s", path)
    return torch.load(path, map_location="cpu", weights_only=True)


def _build_small_cnn(
    in_channels: int, pretrained: str | os.PathLike | None
) -> tuple[nn.Module, int]:
    if pretrained == "torchvision":
        raise ValueError("small-cnn has no torchvision weights; pass a state dict path or None")

    layers: list[nn.Module] = []
    previous = in_channels
    for channels in SMALL_CNN_CHANNELS:
        layers += [
            nn.Conv2d(previous, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
        ]
        previous = channels
    network = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())

    if pretrained is not None:
        network.load_state_dict(load_state_dict_file(pretrained))
    return network, previous


def _build_torchvision_model(model_name: str, pretrained: str | os.PathLike | None) -> nn.Module:
    try:
        model = torchvision.models.get_model(model_name, weights=None)
    except ValueError as error:
        raise ValueError(f"unknown torchvision model {model_name!r}: {error}") from error

    if pretrained is None:
        return model

    if pretrained == "torchvision":
        path, url = torchvision_weights_path(model_name)
        state = load_state_dict_file(
            path, source=f"{url} (torchvision's download cache, set by TORCH_HOME)"
        )
        # torchvision's builders switch this on whenever they load pretrained weights.
        if hasattr(model, "transform_input"):
            model.transform_input = True
    else:
        state = load_state_dict_file(pretrained)

    # NOTE: the raw file is loaded as is. A few old torchvision files (DenseNet) use legacy key
    # names that torchvision remaps on load, and those fail here with a key mismatch error.
    model.load_state_dict(state)
    return model


def _remove_classifier(model: nn.Module, model_name: str) -> int:
    """Replace the classification layer with identity and return the feature length it received."""
    # Inception v3 and GoogLeNet return auxiliary logits in training mode unless these are off.
    if hasattr(model, "aux_logits"):
        model.aux_logits = False
    for auxiliary in ("AuxLogits", "aux1", "aux2"):
        if hasattr(model, auxiliary):
            setattr(model, auxiliary, None)

    for attribute in ("fc", "classifier", "head", "heads"):
        head = getattr(model, attribute, None)
        if head is None:
            continue
        if isinstance(head, nn.Linear):
            setattr(model, attribute, nn.Identity())
            return head.in_features
        linear_layers = [
            (name, module) for name, module in head.named_modules() if isinstance(module, nn.Linear)
        ]
        if linear_layers:
            last_name, last_layer = linear_layers[-1]
            head.set_submodule(last_name, nn.Identity())
            return last_layer.in_features
        convolutions = [module for module in head.modules() if isinstance(module, nn.Conv2d)]
        if convolutions:
            # SqueezeNet classifies with a 1x1 convolution, so pool the features it would receive.
            setattr(model, attribute, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
            return convolutions[0].in_channels

    raise ValueError(f"cannot find the classifier head of torchvision model {model_name!r}")


def _adapt_channels(network: nn.Module, in_channels: int, name: str) -> nn.Module:
    if in_channels == 3:
        return network
    if in_channels == 1:
        return nn.Sequential(RepeatChannels(3), network)
    raise ValueError(f"backbone {name!r} takes 1 or 3 input channels, got {in_channels}")
