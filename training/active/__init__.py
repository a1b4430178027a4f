"""Active selection of triplet tasks for Conditional Similarity Networks, on plain tensors.

Build a candidate pool around anchors (`build_candidate_pool`), score it with a strategy
from `STRATEGIES` (`score_triples`), then pick the tasks (`select_tasks`). The package
imports neither Django nor the rest of the repository. All work runs on the device of the
given tensors, and random draws come from the torch.Generator passed in.

NOTE: the tests run on CPU only, so the CUDA path (CPU generator, CUDA tensors) is untested.
"""

from training.active.answerability import (
    Answerability,
    AnswerabilityFitConfig,
    fit_answerability,
    relative_gaps,
)
from training.active.calibration import ScaleFitConfig, fit_answer_scale
from training.active.pool import PoolConfig, build_candidate_pool
from training.active.scoring import (
    STRATEGIES,
    ConditionalEmbedding,
    ScoringConfig,
    Strategy,
    answer_probability,
    bald_scores,
    binary_entropy,
    distance_gaps,
    random_scores,
    score_triples,
    uncertainty_scores,
)
from training.active.selection import Selection, SelectionConfig, select_tasks
from training.active.throughput import score_throughput
from training.active.triples import canonical_order, encode_triples, is_degenerate

__all__ = [
    "STRATEGIES",
    "Answerability",
    "AnswerabilityFitConfig",
    "ConditionalEmbedding",
    "PoolConfig",
    "ScaleFitConfig",
    "ScoringConfig",
    "Selection",
    "SelectionConfig",
    "Strategy",
    "answer_probability",
    "bald_scores",
    "binary_entropy",
    "build_candidate_pool",
    "canonical_order",
    "distance_gaps",
    "encode_triples",
    "fit_answer_scale",
    "fit_answerability",
    "is_degenerate",
    "random_scores",
    "relative_gaps",
    "score_throughput",
    "score_triples",
    "select_tasks",
    "uncertainty_scores",
]
