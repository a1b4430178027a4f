"""Fit the slope of the answer model to recorded answers.

The answer model is P(a is closer) = sigmoid(scale * gap) with gap = D(anchor, b) -
D(anchor, a). For an answered triplet, take a = the item the annotator chose as closer:
then gap = D(anchor, farther) - D(anchor, closer) and the outcome is 1. A model that
agrees with the annotator gives a positive gap.

With outcome 1 everywhere, the likelihood is still well-posed in one parameter because
the model has no intercept: it is bounded as long as some gaps are negative (the model
disagrees with an answer). The fit adds both orientations of every answer, (gap, y) and
(-gap, 1 - y), which leaves the slope estimate unchanged and keeps the data balanced.
Where the answers are separable (every gap on the side of its outcome), the likelihood
keeps growing with the slope, so a small ridge penalty and `max_scale` bound it.
"""

import logging
from dataclasses import dataclass

import torch
from torch import Tensor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScaleFitConfig:
    """Settings of the 1-D logistic regression in `fit_answer_scale`.

    `ridge` is the L2 penalty on the slope, per answer. The result is clamped to
    [min_scale, max_scale] in inverse distance units.
    """

    ridge: float = 1e-4
    min_scale: float = 1e-3
    max_scale: float = 1e4
    max_iterations: int = 100
    tolerance: float = 1e-10


def fit_answer_scale(
    distance_gaps: Tensor, outcomes: Tensor | None = None, config: ScaleFitConfig = ScaleFitConfig()
) -> float:
    """Fit `scale` in P(outcome = 1) = sigmoid(scale * gap) by penalised maximum likelihood.

    `distance_gaps` contains D(anchor, farther) - D(anchor, closer) for answered triplets,
    farther and closer as the annotator answered. `outcomes` (0 or 1 per gap) defaults to
    all ones. Returns the slope clamped to [config.min_scale, config.max_scale].
    Raises ValueError on empty, mismatched or non-finite input.
    """
    gaps, labels = _symmetric_data(distance_gaps, outcomes)
    penalty = config.ridge * gaps.shape[0]

    scale = torch.zeros((), dtype=torch.float64)
    for _ in range(config.max_iterations):
        probability = torch.sigmoid(scale * gaps)
        gradient = ((labels - probability) * gaps).sum() - penalty * scale
        curvature = (probability * (1 - probability) * gaps.square()).sum() + penalty
        step = gradient / curvature
        scale = _damped_step(scale, step, gaps, labels, penalty)
        if step.abs() < config.tolerance * (1 + scale.abs()):
            break

    fitted = float(scale.clamp(config.min_scale, config.max_scale))
    logger.info("fitted answer scale %.6g on %d answers", fitted, distance_gaps.numel())
    return fitted


def _symmetric_data(distance_gaps: Tensor, outcomes: Tensor | None) -> tuple[Tensor, Tensor]:
    gaps = distance_gaps.detach().to("cpu", torch.float64).reshape(-1)
    if gaps.numel() == 0:
        raise ValueError("fit_answer_scale needs at least one answered triplet")
    if not torch.isfinite(gaps).all():
        raise ValueError("distance gaps contain NaN or infinite values")

    if outcomes is None:
        labels = torch.ones_like(gaps)
    else:
        labels = outcomes.detach().to("cpu", torch.float64).reshape(-1)
    if labels.shape != gaps.shape:
        raise ValueError(f"got {gaps.numel()} gaps but {labels.numel()} outcomes")
    if not ((labels == 0) | (labels == 1)).all():
        raise ValueError("outcomes must be 0 or 1")

    return torch.cat([gaps, -gaps]), torch.cat([labels, 1 - labels])


def _penalised_log_likelihood(
    scale: Tensor, gaps: Tensor, labels: Tensor, penalty: float
) -> Tensor:
    logits = scale * gaps
    return -torch.nn.functional.binary_cross_entropy_with_logits(
        logits, labels, reduction="sum"
    ) - (0.5 * penalty * scale.square())


def _damped_step(
    scale: Tensor, step: Tensor, gaps: Tensor, labels: Tensor, penalty: float
) -> Tensor:
    """Take the Newton step, halving it until the penalised likelihood does not decrease."""
    current = _penalised_log_likelihood(scale, gaps, labels, penalty)
    for _ in range(50):
        candidate = scale + step
        if _penalised_log_likelihood(candidate, gaps, labels, penalty) >= current:
            return candidate
        step = step / 2
    return scale
