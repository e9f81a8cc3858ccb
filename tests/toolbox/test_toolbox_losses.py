"""Each loss against values computed by hand on tiny inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neurogrow.losses import (
    BalancedSoftmax,
    CrossEntropy,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    WeightedCrossEntropy,
    class_weights,
)

COUNTS = [100, 10, 1]


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])


def test_cross_entropy_by_hand() -> None:
    logits, y = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    expected = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-1)))
    assert CrossEntropy(COUNTS)(logits, y).item() == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_by_hand() -> None:
    logits, y = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    log_p = F.log_softmax(logits, 1)[0]
    eps = 0.3
    expected = -((1 - eps) * log_p[0] + eps / 3 * log_p.sum())
    for loss in (
        CrossEntropy(COUNTS, label_smoothing=eps),
        LogitAdjustedLoss(COUNTS, tau=0.0, label_smoothing=eps),
    ):
        assert loss(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_balanced_softmax_is_ce_on_logits_plus_log_prior(batch) -> None:
    logits, y = batch
    prior = torch.tensor(COUNTS, dtype=torch.float) / sum(COUNTS)
    expected = F.cross_entropy(logits + prior.log(), y)
    assert BalancedSoftmax(COUNTS)(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)
    # softmax normaliser with counts: -log(n_y e^{z_y} / sum_j n_j e^{z_j})
    n = torch.tensor(COUNTS, dtype=torch.float)
    by_hand = -(n[y] * logits.gather(1, y[:, None]).squeeze(1).exp() / (n * logits.exp()).sum(1)).log().mean()
    assert BalancedSoftmax(COUNTS)(logits, y).item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_logit_adjusted_tau_zero_is_ce_and_tau_one_is_balanced_softmax(batch) -> None:
    logits, y = batch
    assert LogitAdjustedLoss(COUNTS, tau=0.0)(logits, y).item() == pytest.approx(
        F.cross_entropy(logits, y).item()
    )
    assert LogitAdjustedLoss(COUNTS, tau=1.0)(logits, y).item() == pytest.approx(
        BalancedSoftmax(COUNTS)(logits, y).item()
    )
    prior = torch.tensor(COUNTS, dtype=torch.float) / sum(COUNTS)
    expected = F.cross_entropy(logits + 2.0 * prior.log(), y)
    assert LogitAdjustedLoss(COUNTS, tau=2.0)(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_ldam_margins_for_given_counts() -> None:
    loss = LDAMLoss([16, 81, 1], max_m=0.5, s=30)
    # m_c ∝ n_c^(-1/4): 1/2, 1/3, 1 -> scaled so the largest is 0.5
    assert loss.margins.tolist() == pytest.approx([0.25, 0.5 / 3, 0.5])


def test_ldam_value_by_hand() -> None:
    loss = LDAMLoss([16, 81, 1], max_m=0.5, s=2.0)
    logits, y = torch.tensor([[0.3, 0.1, 0.2], [0.0, 0.5, -0.2]]), torch.tensor([2, 1])
    adjusted = torch.tensor([[0.3, 0.1, 0.2 - 0.5], [0.0, 0.5 - 0.5 / 3, -0.2]])
    expected = F.cross_entropy(2.0 * adjusted, y)
    assert loss(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_effective_number_weights_by_hand() -> None:
    beta = 0.9
    raw = [(1 - beta) / (1 - beta**n) for n in COUNTS]
    expected = [w / sum(raw) * 3 for w in raw]
    assert class_weights(COUNTS, "effective_number", beta).tolist() == pytest.approx(expected, rel=1e-6)
    assert class_weights(COUNTS, "effective_number", 0.0).tolist() == pytest.approx([1.0, 1.0, 1.0])
    inv = [1 / n for n in COUNTS]
    assert class_weights(COUNTS, "inverse_frequency").tolist() == pytest.approx(
        [w / sum(inv) * 3 for w in inv]
    )


def test_weighted_ce_is_weighted_mean(batch) -> None:
    logits, y = batch
    loss = WeightedCrossEntropy(COUNTS, scheme="inverse_frequency")
    w = class_weights(COUNTS, "inverse_frequency")
    per_sample = F.cross_entropy(logits, y, reduction="none")
    expected = (w[y] * per_sample).sum() / w[y].sum()
    assert loss(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_focal_by_hand(batch) -> None:
    logits, y = batch
    p = F.softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    expected = (-((1 - p) ** 2) * p.log()).mean()
    assert FocalLoss(COUNTS, gamma=2.0)(logits, y).item() == pytest.approx(expected.item(), rel=1e-5)
    assert FocalLoss(COUNTS, gamma=0.0)(logits, y).item() == pytest.approx(
        F.cross_entropy(logits, y).item(), rel=1e-5
    )


def test_set_class_weights_applies_to_every_ce_type_loss(batch) -> None:
    logits, y = batch
    w = torch.tensor([0.1, 1.0, 3.0])
    for loss in (CrossEntropy(COUNTS), LDAMLoss(COUNTS, s=1.0), BalancedSoftmax(COUNTS), FocalLoss(COUNTS)):
        unweighted = loss(logits, y)
        loss.set_class_weights(w)
        assert loss(logits, y).item() != pytest.approx(unweighted.item())
        loss.set_class_weights(None)
        assert loss(logits, y).item() == pytest.approx(unweighted.item())


def test_losses_follow_the_module_device_and_dtype(batch) -> None:
    logits, y = batch
    loss = LDAMLoss(COUNTS).to(torch.float64)
    assert loss(logits.double(), y).dtype == torch.float64
    assert not any(b.is_cuda for b in loss.buffers())


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: CrossEntropy([10, 0]), "positive counts"),
        (lambda: CrossEntropy([10, 1], label_smoothing=1.5), "label_smoothing"),
        (lambda: WeightedCrossEntropy([10, 1], beta=1.0), "beta"),
        (lambda: WeightedCrossEntropy([10, 1], scheme="nope"), "unknown weight scheme"),
        (lambda: FocalLoss([10, 1], gamma=-1), "gamma"),
        (lambda: LDAMLoss([10, 1], max_m=0), "max_m"),
        (lambda: CrossEntropy([10, 1]).set_class_weights([1.0]), "one per class"),
    ],
)
def test_bad_options_raise_clear_errors(factory, match) -> None:
    with pytest.raises(ValueError, match=match):
        factory()
