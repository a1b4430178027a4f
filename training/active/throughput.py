"""Measure how many candidate triples a strategy scores per second."""

import logging
import time

import torch

from training.active.scoring import ConditionalEmbedding, ScoringConfig, score_triples
from training.active.triples import canonical_order, skip_two_items

logger = logging.getLogger(__name__)


def score_throughput(
    strategy: str,
    n_items: int,
    d: int,
    n_candidates: int,
    device: str | torch.device,
    repeats: int,
    seed: int = 0,
    config: ScoringConfig = ScoringConfig(),
) -> float:
    """Return candidate triples scored per second by `strategy`, on random embeddings.

    Builds (n_items, d) normal embeddings, a uniform mask and `n_candidates` random
    distinct-item triples on `device`, scores them once to warm up, then times `repeats`
    scorings. The time includes moving random draws from the CPU generator to `device`.
    """
    if n_items < 3 or d < 1 or n_candidates < 1 or repeats < 1:
        raise ValueError("n_items must be at least 3 and d, n_candidates and repeats positive")
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)

    embedding = ConditionalEmbedding(
        embeddings=torch.randn(n_items, d, generator=generator).to(device),
        mask=torch.rand(d, generator=generator).to(device),
    )
    triples = _random_triples(n_items, n_candidates, generator).to(device)

    score_triples(strategy, triples, embedding, config, generator)
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        score_triples(strategy, triples, embedding, config, generator)
    _synchronize(device)
    elapsed = time.perf_counter() - start

    rate = n_candidates * repeats / elapsed
    logger.info(
        "strategy %s scored %.0f triples/s on %s (N=%d, d=%d)", strategy, rate, device, n_items, d
    )
    return rate


def _random_triples(n_items: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """Draw `count` triples of three distinct items, with the candidates in canonical order."""
    anchors = torch.randint(n_items, (count,), generator=generator)
    firsts = (anchors + 1 + torch.randint(n_items - 1, (count,), generator=generator)) % n_items
    seconds = skip_two_items(
        torch.randint(n_items - 2, (count,), generator=generator), anchors, firsts
    )
    return canonical_order(torch.stack([anchors, firsts, seconds], dim=1))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
