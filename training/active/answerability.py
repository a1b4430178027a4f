"""Chance that a question gets an answer at all, fitted to earlier "can't tell" judgements.

Under a categorical notion of similarity (same font weight or not), a question is
undecidable when both candidates match the anchor or neither does. The embedding then
puts both candidates at about the same distance, which is where the uncertainty strategy
looks for questions.
The answerability model is P(answered) = sigmoid(intercept + slope * r), where
r = |D(anchor, b) - D(anchor, a)| / (D(anchor, a) + D(anchor, b)) is the relative distance
gap in [0, 1]. Multiplying a strategy's score by P(answered) gives the expected value of
asking, counting "can't tell" as worth nothing.
"""

import logging
from dataclasses import dataclass

import torch
from torch import Tensor

from training.active.triples import anchor_distances, check_triples

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answerability:
    """Coefficients of P(answered) = sigmoid(intercept + slope * relative gap)."""

    intercept: float
    slope: float

    def probability(self, relative: Tensor) -> Tensor:
        return torch.sigmoid(self.intercept + self.slope * relative)


@dataclass(frozen=True)
class AnswerabilityFitConfig:
    """Settings of the fit: L2 penalty per question, iterations, and the data it needs.

    With fewer than `min_questions` questions, or fewer than `min_each` answered or
    unanswered ones, the fit returns None and no answerability term applies.
    """

    ridge: float = 1e-3
    max_iterations: int = 50
    tolerance: float = 1e-9
    min_questions: int = 30
    min_each: int = 5


def relative_gaps(points: Tensor, triples: Tensor, chunk_size: int = 65_536) -> Tensor:
    """Return |D(anchor, b) - D(anchor, a)| / (D(anchor, a) + D(anchor, b)) per triple, 0 where both are 0."""
    check_triples(triples)
    to_a, to_b = anchor_distances(points, triples, chunk_size)
    total = to_a + to_b
    return torch.where(total > 0, (to_b - to_a).abs() / total.clamp(min=1e-12), torch.zeros_like(total))


def fit_answerability(
    relative: Tensor, answered: Tensor, config: AnswerabilityFitConfig = AnswerabilityFitConfig()
) -> Answerability | None:
    """Fit the answerability model by penalised logistic regression (Newton's method).

    `relative` contains the relative gaps of earlier questions and `answered` is true where a
    question got an answer and false where it got "can't tell". Returns None when the
    data are too few to fit (see AnswerabilityFitConfig).
    """
    x = relative.detach().to("cpu", torch.float64).reshape(-1)
    y = answered.detach().to("cpu", torch.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"got {x.numel()} relative gaps but {y.numel()} answered flags; pass one flag per question")
    if not torch.isfinite(x).all():
        raise ValueError("relative gaps contain NaN or infinite values; check the embeddings for NaN")
    n_answered = int(y.sum())
    if x.numel() < config.min_questions or min(n_answered, x.numel() - n_answered) < config.min_each:
        logger.info("answerability not fitted: %d questions, %d answered", x.numel(), n_answered)
        return None

    design = torch.stack([torch.ones_like(x), x], dim=1)
    penalty = config.ridge * x.numel() * torch.diag(torch.tensor([0.0, 1.0], dtype=torch.float64))
    weights = torch.zeros(2, dtype=torch.float64)
    for _ in range(config.max_iterations):
        probability = torch.sigmoid(design @ weights)
        gradient = design.T @ (y - probability) - penalty @ weights
        hessian = design.T @ (design * (probability * (1 - probability)).unsqueeze(1)) + penalty
        step = torch.linalg.solve(hessian + 1e-9 * torch.eye(2, dtype=torch.float64), gradient)
        weights = weights + step
        if not torch.isfinite(weights).all():
            logger.warning("answerability fit diverged on %d questions; no answerability term", x.numel())
            return None
        if step.abs().max() < config.tolerance * (1 + weights.abs().max()):
            break

    model = Answerability(intercept=float(weights[0]), slope=float(weights[1]))
    logger.info(
        "fitted answerability on %d questions (%d answered): intercept %.4g, slope %.4g",
        x.numel(), n_answered, model.intercept, model.slope,
    )
    return model
