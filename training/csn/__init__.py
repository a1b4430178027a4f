"""Conditional Similarity Networks (Veit, Belongie and Karaletsos, CVPR 2017) in plain PyTorch.

One embedding f(x) in R^d is shared by all conditions, and condition c compares images with the
masked distance ||(f(x_i) - f(x_j)) * m_c||_2. This package has no Django dependency, so it runs
in workers, notebooks and tests alike.
"""

from .backbones import (
    BACKBONE_NAMES,
    PretrainedWeightsNotFound,
    build_backbone,
    torchvision_weights_path,
)
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .config import VARIANTS, CSNConfig, TrainConfig
from .data import (
    ImageLoadError,
    ImageSource,
    ImageTensorizer,
    PathImageSource,
    TensorImageSource,
    as_triplets,
    build_transform,
    unique_image_keys,
)
from .device import resolve_amp, resolve_device, resolve_pin_memory
from .evaluate import (
    AccuracyReport,
    MaskStatistics,
    embed_items,
    mask_statistics,
    masked_embeddings,
    triplet_accuracy,
)
from .loss import LossWeights, TripletLoss, triplet_loss
from .model import (
    ConditionalSimilarityNetwork,
    TaskSpecificNetworks,
    TripletModel,
    build_model,
    conditional_distance,
    triplet_distances,
)
from .probe import ProbeResult, linear_probe
from .trainer import EpochMetrics, TrainResult, train
from .warm_start import warm_start

__all__ = [
    "BACKBONE_NAMES",
    "VARIANTS",
    "AccuracyReport",
    "CSNConfig",
    "Checkpoint",
    "ConditionalSimilarityNetwork",
    "EpochMetrics",
    "ImageLoadError",
    "ImageSource",
    "ImageTensorizer",
    "LossWeights",
    "MaskStatistics",
    "PathImageSource",
    "PretrainedWeightsNotFound",
    "ProbeResult",
    "TaskSpecificNetworks",
    "TensorImageSource",
    "TrainConfig",
    "TrainResult",
    "TripletLoss",
    "TripletModel",
    "as_triplets",
    "build_backbone",
    "build_model",
    "build_transform",
    "conditional_distance",
    "embed_items",
    "linear_probe",
    "load_checkpoint",
    "mask_statistics",
    "masked_embeddings",
    "resolve_amp",
    "resolve_device",
    "resolve_pin_memory",
    "save_checkpoint",
    "torchvision_weights_path",
    "train",
    "triplet_accuracy",
    "triplet_distances",
    "triplet_loss",
    "unique_image_keys",
    "warm_start",
]
