"""Triplet loss terms against values worked out by hand."""

import math

import pytest
import torch

from training.csn import LossWeights, conditional_distance, triplet_loss


def test_hinge_hand_computed():
    closer = torch.tensor([1.0, 0.5, 2.0])
    farther = torch.tensor([1.5, 0.2, 1.0])
    embeddings = torch.zeros(3, 3, 2)

    loss = triplet_loss(
        closer, farther, embeddings, None, LossWeights(margin=0.2, lambda_e=0.0, lambda_m=0.0)
    )

    # max(0, 1 - 1.5 + 0.2) = 0, max(0, 0.5 - 0.2 + 0.2) = 0.5, max(0, 2 - 1 + 0.2) = 1.2
    assert loss.hinge.item() == pytest.approx((0.0 + 0.5 + 1.2) / 3)
    assert loss.total.item() == pytest.approx((0.0 + 0.5 + 1.2) / 3)


def test_hinge_zero_when_margin_satisfied():
    loss = triplet_loss(torch.tensor([0.1]), torch.tensor([1.0]), torch.zeros(1, 3, 4), None)

    assert loss.hinge.item() == 0.0


def test_embedding_norm_hand_computed():
    # Two triplets, d = 2. Anchor rows (3, 4) and (0, 0): Frobenius norm 5.
    # Closer rows (1, 0) and (0, 0): norm 1. Farther rows (0, 0) and (0, 2): norm 2.
    embeddings = torch.tensor(
        [
            [[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]],
            [[0.0, 0.0], [0.0, 0.0], [0.0, 2.0]],
        ]
    )
    weights = LossWeights(margin=0.0, lambda_e=0.1, lambda_m=0.0)

    loss = triplet_loss(torch.zeros(2), torch.ones(2), embeddings, None, weights)

    expected_norm = (5.0 + 1.0 + 2.0) / 3 / math.sqrt(2)
    assert loss.embedding_norm.item() == pytest.approx(expected_norm)
    assert loss.hinge.item() == 0.0
    assert loss.total.item() == pytest.approx(0.1 * expected_norm)


def test_mask_l1_hand_computed():
    batch_masks = torch.tensor([[0.5, 0.0, 1.0], [2.0, 0.25, 0.0]])
    weights = LossWeights(margin=0.0, lambda_e=0.0, lambda_m=0.5)

    loss = triplet_loss(torch.zeros(2), torch.ones(2), torch.zeros(2, 3, 3), batch_masks, weights)

    assert loss.mask_l1.item() == pytest.approx((1.5 + 2.25) / 2)
    assert loss.total.item() == pytest.approx(0.5 * (1.5 + 2.25) / 2)


def test_mask_l1_zero_without_masks():
    loss = triplet_loss(torch.zeros(1), torch.ones(1), torch.ones(1, 3, 2), None)

    assert loss.mask_l1.item() == 0.0


def test_total_combines_all_terms():
    closer, farther = torch.tensor([1.0]), torch.tensor([0.5])
    embeddings = torch.tensor([[[0.0, 2.0], [0.0, 0.0], [0.0, 0.0]]])
    batch_masks = torch.tensor([[1.0, 3.0]])
    weights = LossWeights(margin=0.2, lambda_e=0.01, lambda_m=0.001)

    loss = triplet_loss(closer, farther, embeddings, batch_masks, weights)

    # Hinge 1 - 0.5 + 0.2 = 0.7, embedding norm (2 + 0 + 0) / 3 / sqrt(1), mask L1 4 / 1.
    assert loss.total.item() == pytest.approx(0.7 + 0.01 * 2.0 / 3 + 0.001 * 4.0)


def test_default_weights_match_reference_settings():
    weights = LossWeights()

    assert weights.margin == 0.2
    assert weights.lambda_e == 5e-3
    assert weights.lambda_m == 5e-4


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        triplet_loss(torch.zeros(2), torch.zeros(2), torch.zeros(3, 3, 4), None)


def test_conditional_distance_hand_computed():
    emb_a = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    emb_b = torch.tensor([[4.0, 6.0, 3.0], [1.0, 1.0, 1.0]])
    masks = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0]])

    distance = conditional_distance(emb_a, emb_b, masks)

    assert distance[0].item() == pytest.approx(5.0)
    assert distance[1].item() == pytest.approx(2.0)


def test_conditional_distance_finite_gradient_at_zero():
    emb_a = torch.ones(1, 3, requires_grad=True)

    conditional_distance(emb_a, torch.ones(1, 3), torch.ones(1, 3)).sum().backward()

    assert torch.isfinite(emb_a.grad).all()
