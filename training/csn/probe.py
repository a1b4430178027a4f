"""Linear probe: how well a categorical attribute can be read off embeddings by logistic regression."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ProbeResult:
    """Test accuracy of the probe and the chance rate.

    `chance_rate` is the test accuracy of always predicting the most frequent training label.
    """

    accuracy: float
    chance_rate: float
    n_train: int
    n_test: int
    n_classes: int


def linear_probe(
    embeddings: torch.Tensor,
    labels: Sequence[Hashable],
    *,
    test_fraction: float = 0.3,
    seed: int = 0,
    steps: int = 300,
    lr: float = 0.05,
    weight_decay: float = 1e-3,
) -> ProbeResult:
    """Fit multinomial logistic regression on a seeded random split and report its test accuracy.

    Features are standardised with the training split's mean and std. The model is trained on the
    full training split with Adam for `steps` steps.
    """
    if embeddings.ndim != 2 or embeddings.shape[0] != len(labels):
        raise ValueError(
            f"embeddings must be (N, d) with N = {len(labels)} labels, got {tuple(embeddings.shape)}"
        )
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")

    classes = sorted(set(labels), key=repr)
    if len(classes) < 2:
        raise ValueError(f"a linear probe needs at least two label values, got {classes}")
    targets = torch.tensor([classes.index(label) for label in labels], dtype=torch.int64)

    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    n_test = max(1, round(len(labels) * test_fraction))
    if n_test >= len(labels):
        raise ValueError(
            f"{len(labels)} samples leave nothing to train on with test_fraction {test_fraction}"
        )
    test, train = order[:n_test], order[n_test:]

    features = embeddings.detach().float().cpu()
    mean = features[train].mean(dim=0)
    std = features[train].std(dim=0, unbiased=False).clamp_min(1e-6)
    features = (features - mean) / std

    classifier = _fit_logistic_regression(
        features[train],
        targets[train],
        len(classes),
        steps=steps,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
    )
    with torch.no_grad():
        predicted = classifier(features[test]).argmax(dim=1)
    accuracy = (predicted == targets[test]).float().mean().item()

    majority = torch.bincount(targets[train], minlength=len(classes)).argmax()
    chance_rate = (targets[test] == majority).float().mean().item()

    return ProbeResult(
        accuracy=accuracy,
        chance_rate=chance_rate,
        n_train=len(train),
        n_test=n_test,
        n_classes=len(classes),
    )


def _fit_logistic_regression(
    features: torch.Tensor,
    targets: torch.Tensor,
    n_classes: int,
    *,
    steps: int,
    lr: float,
    weight_decay: float,
    seed: int,
) -> nn.Linear:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = nn.Linear(features.shape[1], n_classes)

    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr, weight_decay=weight_decay)
    loss_function = nn.CrossEntropyLoss()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_function(classifier(features), targets)
        loss.backward()
        optimizer.step()
    return classifier
