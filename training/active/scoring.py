"""Informativeness scores for candidate triples under one condition.

Every strategy takes canonical (M, 3) triples (anchor, a, b) and returns an (M,) float
tensor in which a higher score means a more useful question. The answer model is
P(a is closer to anchor) = sigmoid(scale * (D(anchor, b) - D(anchor, a))), where D is the
conditional distance ||(f(x_i) - f(x_j)) * m_c||_2. It has no intercept: in canonical
order "a" is just the smaller item position, so no side is preferred.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from training.active.answerability import Answerability, relative_gaps
from training.active.triples import anchor_distances, check_triples, uniform

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConditionalEmbedding:
    """Item embeddings for one condition.

    `embeddings` is (N, d). With `mask` (d,) the distance is taken on embeddings * mask.
    Without a mask the embeddings are taken as already masked for the condition.
    `ensemble` (K, N, d) contains K stochastic versions of the embeddings (dropout passes or
    checkpoints), masked by the same mask, and is used by the `bald` strategy.
    """

    embeddings: Tensor
    mask: Tensor | None = None
    ensemble: Tensor | None = None

    def __post_init__(self) -> None:
        if self.embeddings.dim() != 2:
            raise ValueError(
                f"embeddings must have shape (N, d), got {tuple(self.embeddings.shape)}"
            )
        n_items, dim = self.embeddings.shape
        if self.mask is not None and self.mask.shape != (dim,):
            raise ValueError(f"mask must have shape ({dim},), got {tuple(self.mask.shape)}")
        if self.ensemble is not None and (
            self.ensemble.dim() != 3 or self.ensemble.shape[1:] != (n_items, dim)
        ):
            raise ValueError(
                f"ensemble must have shape (K, {n_items}, {dim}), got {tuple(self.ensemble.shape)}"
            )

    @property
    def n_items(self) -> int:
        return self.embeddings.shape[0]

    @property
    def device(self) -> torch.device:
        return self.embeddings.device

    def masked(self) -> Tensor:
        """Return the (N, d) embeddings multiplied by the condition mask."""
        return self.embeddings if self.mask is None else self.embeddings * self.mask

    def masked_member(self, index: int) -> Tensor:
        """Return ensemble member `index`, (N, d), multiplied by the condition mask."""
        assert self.ensemble is not None
        member = self.ensemble[index]
        return member if self.mask is None else member * self.mask


@dataclass(frozen=True)
class ScoringConfig:
    """Settings of the answer model and of the BALD estimate.

    `scale` is the logistic slope per unit of distance gap (see `fit_answer_scale`).
    Without an ensemble, `bald` draws `dropout_samples` Monte Carlo dropout versions of the
    masked embedding, zeroing each coordinate of each item with probability `dropout_rate`
    and rescaling the rest by 1 / (1 - dropout_rate). `chunk_size` caps how many triples
    are gathered at once, so memory stays near chunk_size * 3 * d floats.
    With `answerability` set, every strategy but `random` multiplies its scores by the
    fitted chance that the question gets an answer rather than "can't tell".
    """

    scale: float = 1.0
    answerability: Answerability | None = None
    dropout_samples: int = 16
    dropout_rate: float = 0.1
    chunk_size: int = 65_536

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        if self.dropout_samples < 2:
            raise ValueError(f"dropout_samples must be at least 2, got {self.dropout_samples}")
        if not 0 < self.dropout_rate < 1:
            raise ValueError(f"dropout_rate must lie in (0, 1), got {self.dropout_rate}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {self.chunk_size}")


Strategy = Callable[[Tensor, ConditionalEmbedding, ScoringConfig, torch.Generator], Tensor]


def distance_gaps(points: Tensor, triples: Tensor, chunk_size: int) -> Tensor:
    """Return D(anchor, b) - D(anchor, a) for each row, on (N, d) already masked `points`."""
    to_a, to_b = anchor_distances(points, triples, chunk_size)
    return to_b - to_a


def answer_probability(gaps: Tensor, scale: float) -> Tensor:
    """Return P(a is closer) = sigmoid(scale * gap) for gaps D(anchor, b) - D(anchor, a)."""
    return torch.sigmoid(scale * gaps)


def binary_entropy(probability: Tensor) -> Tensor:
    """Return the entropy in nats of a Bernoulli variable, exactly 0 at p = 0 and p = 1."""
    return -(
        torch.special.xlogy(probability, probability)
        + torch.special.xlogy(1 - probability, 1 - probability)
    )


def random_scores(
    triples: Tensor,
    embedding: ConditionalEmbedding,
    config: ScoringConfig,
    generator: torch.Generator,
) -> Tensor:
    """Score each triple U[0, 1) at random, ignoring the embedding: the baseline strategy."""
    check_triples(triples)
    return uniform((triples.shape[0],), generator, embedding.device)


def uncertainty_scores(
    triples: Tensor,
    embedding: ConditionalEmbedding,
    config: ScoringConfig,
    generator: torch.Generator,
) -> Tensor:
    """Score each triple 0.5 - |P - 0.5|, highest (0.5) where the model's answer is a coin flip."""
    check_triples(triples)
    gaps = distance_gaps(embedding.masked(), triples, config.chunk_size)
    probability = answer_probability(gaps, config.scale)
    return 0.5 - (probability - 0.5).abs()


def bald_scores(
    triples: Tensor,
    embedding: ConditionalEmbedding,
    config: ScoringConfig,
    generator: torch.Generator,
) -> Tensor:
    """Score each triple by the mutual information between its answer and the model (BALD).

    The score is H(mean_k p_k) - mean_k H(p_k) in nats, with p_k the answer probability
    under the k-th version of the embedding. The versions are `embedding.ensemble` when
    given, otherwise Monte Carlo dropout samples of the masked embedding (the default).
    It is 0 when all versions agree and at most log 2.
    """
    check_triples(triples)
    items, local_triples = torch.unique(triples, return_inverse=True)
    total_probability = torch.zeros(
        triples.shape[0], dtype=embedding.embeddings.dtype, device=embedding.device
    )
    total_entropy = torch.zeros_like(total_probability)

    versions = _embedding_versions(embedding, items, config, generator)
    n_versions = 0
    for points in versions:
        gaps = distance_gaps(points, local_triples, config.chunk_size)
        probability = answer_probability(gaps, config.scale).to(total_probability.dtype)
        total_probability += probability
        total_entropy += binary_entropy(probability)
        n_versions += 1

    mean_probability = total_probability / n_versions
    information = binary_entropy(mean_probability) - total_entropy / n_versions
    return information.clamp(min=0)


def _embedding_versions(
    embedding: ConditionalEmbedding,
    items: Tensor,
    config: ScoringConfig,
    generator: torch.Generator,
):
    """Yield each stochastic version of the masked embedding, restricted to rows `items`."""
    if embedding.ensemble is not None:
        for index in range(embedding.ensemble.shape[0]):
            yield embedding.masked_member(index)[items]
        return

    points = embedding.masked()[items]
    keep = 1.0 - config.dropout_rate
    for _ in range(config.dropout_samples):
        keep_mask = uniform(tuple(points.shape), generator, points.device) < keep
        yield points * keep_mask / keep


STRATEGIES: dict[str, Strategy] = {
    "random": random_scores,
    "uncertainty": uncertainty_scores,
    "bald": bald_scores,
}


def score_triples(
    strategy: str,
    triples: Tensor,
    embedding: ConditionalEmbedding,
    config: ScoringConfig,
    generator: torch.Generator,
) -> Tensor:
    """Score (M, 3) `triples` with the named strategy from STRATEGIES and return (M,) scores."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {sorted(STRATEGIES)}")
    triples = triples.to(embedding.device)
    scores = STRATEGIES[strategy](triples, embedding, config, generator)
    if config.answerability is not None and strategy != "random":
        relative = relative_gaps(embedding.masked(), triples, config.chunk_size)
        scores = scores * config.answerability.probability(relative).to(scores.dtype)
    logger.debug("scored %d triples with strategy %s", triples.shape[0], strategy)
    return scores
