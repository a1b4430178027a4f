"""Masks and the four model variants behind one interface."""

import pytest
import torch

from training.csn import (
    ConditionalSimilarityNetwork,
    CSNConfig,
    TaskSpecificNetworks,
    build_model,
    triplet_distances,
    triplet_loss,
)
from training.csn.masks import FixedMasks, LearnedMasks

VARIANTS = ["learned", "fixed", "standard", "task-specific"]


def tiny_config(variant: str, n_conditions: int = 2, embedding_dim: int = 8) -> CSNConfig:
    return CSNConfig(
        n_conditions=n_conditions, variant=variant, embedding_dim=embedding_dim, image_size=16
    )


def one_step_loss(model, images, triplets):
    """Embed the images (row i is item i) and return the loss of the given triplets."""
    conditions = triplets[:, 3]
    if model.shares_embedding:
        embeddings = model.embed(images)
        index = triplets[:, :3]
    else:
        # Key every (item, condition) pair used by the triplets, as the batching code does.
        keys = torch.stack([triplets[:, :3].reshape(-1), conditions.repeat_interleave(3)], dim=1)
        unique, inverse = torch.unique(keys, dim=0, return_inverse=True)
        embeddings = model.embed(images[unique[:, 0]], unique[:, 1])
        index = inverse.view(-1, 3)
    closer, farther, gathered = triplet_distances(model, embeddings, index, conditions)
    batch_masks = model.masks()[conditions] if model.masks_trainable else None
    return triplet_loss(closer, farther, gathered, batch_masks)


def test_learned_masks_receive_gradient():
    model = build_model(tiny_config("learned"))
    images = torch.rand(4, 3, 16, 16)
    triplets = torch.tensor([[0, 1, 2, 0], [1, 2, 3, 1], [3, 0, 1, 1]])

    one_step_loss(model, images, triplets).total.backward()

    beta = model.condition_masks.beta
    assert beta.requires_grad
    assert beta.grad is not None
    assert beta.grad.abs().sum() > 0


def test_learned_masks_are_relu_of_beta():
    masks = LearnedMasks(3, 10, seed=1)
    with torch.no_grad():
        masks.beta[0, 0] = -1.0

    values = masks()

    assert values[0, 0].item() == 0.0
    assert torch.equal(values, torch.relu(masks.beta))


def test_learned_mask_init_is_seeded():
    first = LearnedMasks(4, 64, seed=3).beta
    same_seed = LearnedMasks(4, 64, seed=3).beta
    other_seed = LearnedMasks(4, 64, seed=4).beta

    assert torch.equal(first, same_seed)
    assert not torch.equal(first, other_seed)


def test_learned_mask_init_distribution():
    beta = LearnedMasks(50, 64, mean=0.9, std=0.7, seed=0).beta.detach()

    assert beta.mean().item() == pytest.approx(0.9, abs=0.05)
    assert beta.std().item() == pytest.approx(0.7, abs=0.05)


def test_fixed_masks_get_no_gradient():
    model = build_model(tiny_config("fixed"))
    images = torch.rand(4, 3, 16, 16)
    triplets = torch.tensor([[0, 1, 2, 0], [1, 2, 3, 1]])

    one_step_loss(model, images, triplets).total.backward()

    assert not model.masks_trainable
    assert not model.masks().requires_grad
    assert all("condition_masks" not in name for name, _ in model.named_parameters())


def test_fixed_masks_are_disjoint_blocks():
    masks = FixedMasks(3, 10)()

    assert masks.sum(dim=0).max().item() == 1.0
    for row in range(3):
        assert masks[row].sum().item() == 3.0
        assert torch.equal(masks[row, row * 3 : (row + 1) * 3], torch.ones(3))
    assert masks[:, 9].sum().item() == 0.0


def test_fixed_masks_need_enough_dimensions():
    with pytest.raises(ValueError, match="embedding_dim"):
        tiny_config("fixed", n_conditions=5, embedding_dim=4)


def test_standard_model_has_no_masks():
    model = build_model(tiny_config("standard"))

    assert torch.equal(model.masks(), torch.ones(2, 8))
    assert not model.masks_trainable
    assert all("condition_masks" not in name for name, _ in model.named_parameters())


def test_task_specific_has_one_network_per_condition():
    model = build_model(tiny_config("task-specific", n_conditions=3))

    assert isinstance(model, TaskSpecificNetworks)
    assert len(model.networks) == 3
    assert not model.shares_embedding
    assert torch.equal(model.masks(), torch.ones(3, 8))


def test_task_specific_embeds_with_condition_network():
    model = build_model(tiny_config("task-specific", n_conditions=2)).eval()
    images = torch.rand(3, 3, 16, 16)
    rows = torch.tensor([1, 0, 1])

    with torch.no_grad():
        mixed = model.embed(images, rows)
        by_first = model.networks[0](images)
        by_second = model.networks[1](images)

    assert torch.allclose(mixed[0], by_second[0], atol=1e-6)
    assert torch.allclose(mixed[1], by_first[1], atol=1e-6)
    assert torch.allclose(mixed[2], by_second[2], atol=1e-6)


def test_task_specific_needs_condition_rows():
    model = build_model(tiny_config("task-specific"))

    with pytest.raises(ValueError, match="condition_rows"):
        model.embed(torch.rand(2, 3, 16, 16))


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_builds_and_steps(variant):
    model = build_model(tiny_config(variant))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = {name: value.detach().clone() for name, value in model.named_parameters()}
    images = torch.rand(5, 3, 16, 16)
    triplets = torch.tensor([[0, 1, 2, 0], [2, 3, 4, 1], [4, 0, 1, 0]])

    loss = one_step_loss(model, images, triplets)
    optimizer.zero_grad()
    loss.total.backward()
    optimizer.step()

    assert torch.isfinite(loss.total)
    assert model.embed(images, torch.zeros(5, dtype=torch.int64)).shape == (5, 8)
    assert model.masks().shape == (2, 8)
    changed = [
        name for name, value in model.named_parameters() if not torch.equal(value, before[name])
    ]
    assert changed


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_steps_reduce_loss(variant):
    model = build_model(tiny_config(variant), seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(6, 3, 16, 16, generator=generator)
    triplets = torch.tensor([[0, 1, 2, 0], [3, 4, 5, 1], [1, 2, 3, 0], [5, 0, 4, 1], [2, 5, 0, 1]])

    losses = []
    for _ in range(15):
        loss = one_step_loss(model, images, triplets).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    assert losses[-1] < losses[0]


def test_build_model_is_seeded():
    first = build_model(tiny_config("learned"), seed=5).state_dict()
    second = build_model(tiny_config("learned"), seed=5).state_dict()
    other = build_model(tiny_config("learned"), seed=6).state_dict()

    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not all(torch.equal(first[key], other[key]) for key in first)


def test_build_model_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)

    build_model(tiny_config("learned"))

    assert torch.equal(torch.rand(3), expected)


def test_masked_distance_uses_condition_mask():
    model = build_model(tiny_config("fixed", n_conditions=2, embedding_dim=4))
    emb_a = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    emb_b = torch.tensor([[3.0, 4.0, 10.0, 10.0], [3.0, 4.0, 6.0, 8.0]])

    distance = model.masked_distance(emb_a, emb_b, torch.tensor([0, 1]))

    assert isinstance(model, ConditionalSimilarityNetwork)
    assert distance[0].item() == pytest.approx(5.0)
    assert distance[1].item() == pytest.approx(10.0)


def test_invalid_variant_raises():
    with pytest.raises(ValueError, match="variant"):
        CSNConfig(n_conditions=2, variant="masked")
