"""fit_answer_scale recovers the slope of the logistic answer model."""

import pytest
import torch

from training.active import ScaleFitConfig, fit_answer_scale

TRUE_SCALE = 3.0


def synthetic_answers(seed: int, count: int = 20_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw gaps D(anchor, b) - D(anchor, a) and outcomes 1 = "a is closer" from the model."""
    generator = torch.Generator().manual_seed(seed)
    gaps = torch.rand(count, generator=generator, dtype=torch.float64) * 4 - 2
    outcomes = (
        torch.rand(count, generator=generator, dtype=torch.float64)
        < torch.sigmoid(TRUE_SCALE * gaps)
    ).double()
    return gaps, outcomes


def test_fit_recovers_known_scale():
    gaps, outcomes = synthetic_answers(seed=0)
    assert fit_answer_scale(gaps, outcomes) == pytest.approx(TRUE_SCALE, rel=0.05)


def test_fit_from_recorded_orientation():
    # Re-express every answer as D(anchor, farther) - D(anchor, closer) with outcome 1.
    gaps, outcomes = synthetic_answers(seed=1)
    recorded = torch.where(outcomes == 1, gaps, -gaps)

    from_recorded = fit_answer_scale(recorded)
    from_outcomes = fit_answer_scale(gaps, outcomes)

    assert from_recorded == pytest.approx(TRUE_SCALE, rel=0.05)
    assert from_recorded == pytest.approx(from_outcomes, rel=1e-9)


def test_fit_separable_answers_clamped():
    config = ScaleFitConfig(max_scale=50.0)
    scale = fit_answer_scale(torch.tensor([0.5, 1.0, 2.0]), config=config)
    assert 0 < scale <= config.max_scale


def test_fit_never_below_minimum():
    # Answers that contradict the model push the slope below zero before the clamp.
    config = ScaleFitConfig(min_scale=0.01)
    assert fit_answer_scale(torch.tensor([-1.0, -2.0, -0.5, 0.1]), config=config) == pytest.approx(
        0.01
    )


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        fit_answer_scale(torch.tensor([]))
    with pytest.raises(ValueError, match="outcomes"):
        fit_answer_scale(torch.tensor([1.0, 2.0]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="0 or 1"):
        fit_answer_scale(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match="NaN"):
        fit_answer_scale(torch.tensor([1.0, float("nan")]))
