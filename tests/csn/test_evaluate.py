"""Triplet accuracy, embeddings, mask statistics and the linear probe on models with known outputs."""

import pytest
import torch
from torch import nn

from training.csn import (
    ConditionalSimilarityNetwork,
    CSNConfig,
    TensorImageSource,
    build_model,
    embed_items,
    linear_probe,
    mask_statistics,
    masked_embeddings,
    triplet_accuracy,
)
from training.csn.masks import FixedMasks, LearnedMasks


def mean_colour_model() -> ConditionalSimilarityNetwork:
    """A model whose embedding is the mean RGB colour and whose condition k compares channel k."""
    config = CSNConfig(
        n_conditions=3,
        embedding_dim=3,
        variant="fixed",
        image_size=4,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
    )
    network = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Identity())
    network.register_parameter("unused", nn.Parameter(torch.zeros(1)))
    return ConditionalSimilarityNetwork(config, network, FixedMasks(3, 3))


def colour_source(colours: dict[int, tuple[float, float, float]]) -> TensorImageSource:
    images = torch.stack(
        [torch.tensor(rgb).view(3, 1, 1).expand(3, 4, 4) for rgb in colours.values()]
    )
    return TensorImageSource(images, list(colours))


COLOURS = {
    1: (0.0, 0.0, 0.0),
    2: (0.1, 0.9, 0.0),
    3: (0.8, 0.2, 0.5),
    4: (0.9, 0.0, 1.0),
}


def test_accuracy_per_condition():
    model = mean_colour_model()
    triplets = torch.tensor(
        [
            [1, 2, 3, 0],  # red: |0 - 0.1| < |0 - 0.8|, correct
            [1, 3, 2, 0],  # red: reversed, wrong
            [1, 3, 2, 1],  # green: |0 - 0.2| < |0 - 0.9|, correct
            [4, 3, 1, 2],  # blue: |1 - 0.5| < |1 - 0|, correct
            [4, 1, 3, 2],  # blue: reversed, wrong
        ]
    )

    report = triplet_accuracy(
        model, colour_source(COLOURS), triplets, conditions=["red", "green", "blue"]
    )

    assert report.overall == pytest.approx(3 / 5)
    assert report.per_condition["red"] == pytest.approx(0.5)
    assert report.per_condition["green"] == pytest.approx(1.0)
    assert report.per_condition["blue"] == pytest.approx(0.5)
    assert report.counts == {"red": 2, "green": 1, "blue": 2}


def test_accuracy_tie_counts_as_wrong():
    model = mean_colour_model()
    triplets = torch.tensor([[1, 2, 2, 0]])

    report = triplet_accuracy(model, colour_source(COLOURS), triplets)

    assert report.overall == 0.0
    assert report.per_condition == {0: 0.0}


def test_accuracy_restores_training_mode():
    model = mean_colour_model().train()

    triplet_accuracy(model, colour_source(COLOURS), torch.tensor([[1, 2, 3, 0]]))

    assert model.training


def test_embed_items_returns_rows_in_order():
    model = mean_colour_model()

    embeddings = embed_items(model, colour_source(COLOURS), [3, 1], batch_size=1)

    assert torch.allclose(embeddings, torch.tensor([COLOURS[3], COLOURS[1]]))


def test_masked_embeddings_apply_each_mask():
    model = mean_colour_model()

    masked = masked_embeddings(model, colour_source(COLOURS), [3])

    assert masked.shape == (3, 1, 3)
    assert torch.allclose(masked[0, 0], torch.tensor([0.8, 0.0, 0.0]))
    assert torch.allclose(masked[2, 0], torch.tensor([0.0, 0.0, 0.5]))


def test_task_specific_embed_items_needs_condition():
    config = CSNConfig(n_conditions=2, variant="task-specific", embedding_dim=4, image_size=4)
    model = build_model(config)

    with pytest.raises(ValueError, match="condition_row"):
        embed_items(model, colour_source(COLOURS), [1])

    assert embed_items(model, colour_source(COLOURS), [1, 2], condition_row=1).shape == (2, 4)
    assert masked_embeddings(model, colour_source(COLOURS), [1, 2]).shape == (2, 2, 4)


def test_fixed_mask_statistics():
    model = mean_colour_model()

    statistics = mask_statistics(model)

    assert statistics.sparsity == pytest.approx([2 / 3] * 3)
    assert statistics.overall_sparsity == pytest.approx(2 / 3)
    assert statistics.cosine[0][1] == pytest.approx(0.0)
    assert statistics.cosine[1][1] == pytest.approx(1.0)
    assert statistics.shared_active == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_learned_mask_statistics_hand_set():
    config = CSNConfig(n_conditions=2, embedding_dim=4, image_size=8)
    model = build_model(config)
    assert isinstance(model.condition_masks, LearnedMasks)
    with torch.no_grad():
        model.condition_masks.beta.copy_(
            torch.tensor([[1.0, 1.0, 0.005, -1.0], [0.0, 2.0, 2.0, 0.0]])
        )

    statistics = mask_statistics(model, threshold=0.01)

    # Row 0: 0.005 < 0.01 * 1 and ReLU(-1) = 0 are inactive. Row 1: two zeros are inactive.
    assert statistics.sparsity == pytest.approx([0.5, 0.5])
    assert statistics.active == [2, 2]
    assert statistics.shared_active[0][1] == 1
    # Dot product 1 * 2 + 0.005 * 2 over the product of the two norms.
    expected_cosine = (2.0 + 0.005 * 2.0) / (
        torch.tensor([1.0, 1.0, 0.005]).norm().item() * torch.tensor([2.0, 2.0]).norm().item()
    )
    assert statistics.cosine[0][1] == pytest.approx(expected_cosine, rel=1e-5)


def test_linear_probe_separable_labels():
    generator = torch.Generator().manual_seed(0)
    labels = [index % 3 for index in range(150)]
    centres = torch.tensor([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])
    embeddings = centres[labels] + torch.randn(150, 2, generator=generator) * 0.5

    result = linear_probe(embeddings, labels, seed=1)

    assert result.accuracy > 0.95
    assert result.chance_rate < 0.5
    assert result.n_classes == 3
    assert result.n_train + result.n_test == 150


def test_linear_probe_random_labels_near_chance():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(300, 4, generator=generator)
    labels = torch.randint(0, 2, (300,), generator=generator).tolist()

    result = linear_probe(embeddings, labels, seed=0)

    assert result.accuracy < 0.7


def test_linear_probe_is_seeded():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(60, 3, generator=generator)
    labels = ["a" if value > 0 else "b" for value in embeddings[:, 0].tolist()]

    first = linear_probe(embeddings, labels, seed=5)
    second = linear_probe(embeddings, labels, seed=5)

    assert first == second


def test_linear_probe_needs_two_labels():
    with pytest.raises(ValueError, match="two label values"):
        linear_probe(torch.zeros(4, 2), ["a"] * 4)
