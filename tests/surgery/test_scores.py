"""Score accumulation (GR weights, mean/EMA, norm-of-sum vs sum-of-norms) and top/bottom-k selection."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neurogrow.surgery.scores import GradientAccumulator, batch_weight, class_weights, neuron_norms
from neurogrow.surgery.selection import choose, num_modified
from neurogrow.surgery.types import NeuronGroup, TensorSlice


def mlp() -> tuple[nn.Sequential, NeuronGroup]:
    """Linear(3, 4) -> ReLU -> Linear(4, 2) and its hidden-unit group, written to the groups contract."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    idx = torch.arange(4)
    group = NeuronGroup(
        "0",
        "linear_hidden",
        4,
        (
            TensorSlice("0.weight", 0, idx, "out"),
            TensorSlice("0.bias", 0, idx, "out"),
            TensorSlice("2.weight", 1, idx, "in"),
        ),
    )
    return model, group


def set_grads(model: nn.Module, row_grads: list[float]) -> None:
    """Give hidden unit j a producer gradient of row_grads[j] in every entry (consumer grads zero)."""
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    g = torch.tensor(row_grads)
    model[0].weight.grad = g[:, None].expand(4, 3).clone()
    model[0].bias.grad = g.clone()


def test_class_weights_modes() -> None:
    counts = [100, 25, 4]
    assert torch.allclose(class_weights(counts, "linear"), torch.tensor([1.0, 4.0, 25.0]))
    assert torch.allclose(class_weights(counts, "sqrt"), torch.tensor([1.0, 2.0, 5.0]))
    assert torch.allclose(class_weights(counts, "none"), torch.ones(3))
    with pytest.raises(ValueError, match="class_weighting"):
        class_weights(counts, "cubic")
    with pytest.raises(ValueError, match="positive"):
        class_weights([3, 0], "linear")


def test_batch_weight_is_mean_class_weight() -> None:
    w = class_weights([100, 25, 4])
    assert batch_weight(torch.tensor([0, 0, 2, 1]), w).item() == pytest.approx((1 + 1 + 25 + 4) / 4)


def test_norms_from_tensors_cover_all_roles_asked() -> None:
    model, group = mlp()
    data = dict(model.named_parameters())
    expected_out = torch.cat([model[0].weight, model[0].bias[:, None]], 1).norm(dim=1)
    assert torch.allclose(neuron_norms(data, group, ("out",)), expected_out)
    both = neuron_norms(data, group, ("out", "in"))
    assert torch.allclose(both, (expected_out**2 + model[2].weight.norm(dim=0) ** 2).sqrt())
    l1 = neuron_norms(data, group, ("out",), p=1.0)
    assert torch.allclose(l1, model[0].weight.abs().sum(1) + model[0].bias.abs())


def test_running_mean_weights_each_batch_by_w_b() -> None:
    model, group = mlp()
    acc = GradientAccumulator(dict(model.named_parameters()), [group], mode="mean", roles=("out",))
    set_grads(model, [1.0, 0.0, 0.0, 0.0])
    assert acc.update(1.0)
    set_grads(model, [0.0, 1.0, 0.0, 0.0])
    assert acc.update(9.0)  # a minority-class batch: its neuron must win
    s = acc.scores()["0"]
    per_unit = math.sqrt(4)  # 3 weight entries + 1 bias entry, each with gradient 1
    assert torch.allclose(s, torch.tensor([1.0, 9.0, 0.0, 0.0]) * per_unit / 2)
    assert acc.steps == 2


def test_ema_forgets_old_batches() -> None:
    model, group = mlp()
    acc = GradientAccumulator(dict(model.named_parameters()), [group], mode="ema", decay=0.5, roles=("out",))
    set_grads(model, [1.0, 0.0, 0.0, 0.0])
    acc.update(1.0)
    set_grads(model, [0.0, 1.0, 0.0, 0.0])
    acc.update(1.0)
    s = acc.scores()["0"] / 2.0  # unit norm factor sqrt(4)
    assert torch.allclose(s, torch.tensor([0.25, 0.5, 0.0, 0.0]))


def test_norm_of_sum_cancels_noise_but_sum_of_norms_does_not() -> None:
    model, group = mlp()
    params = dict(model.named_parameters())
    of_sum = GradientAccumulator(params, [group], aggregate="norm_of_sum", roles=("out",))
    sum_of = GradientAccumulator(params, [group], aggregate="sum_of_norms", roles=("out",))
    for sign in (1.0, -1.0):  # unit 0 flips sign (noise), unit 1 is consistent (a real signal)
        set_grads(model, [sign, 0.5, 0.0, 0.0])
        of_sum.update(1.0)
        sum_of.update(1.0)
    a, b = of_sum.scores()["0"], sum_of.scores()["0"]
    assert a[0] == 0 and a[1] > 0
    assert b[0] > b[1] > 0


def test_non_finite_steps_are_skipped() -> None:
    model, group = mlp()
    acc = GradientAccumulator(dict(model.named_parameters()), [group])
    set_grads(model, [1.0, 2.0, 3.0, 4.0])
    acc.update(1.0)
    before = acc.scores()["0"].clone()
    set_grads(model, [float("inf"), 0.0, 0.0, 0.0])
    assert not acc.update(1.0)
    model[2].weight.grad[0, 0] = float("nan")
    assert not acc.update(1.0)
    assert acc.steps == 1 and torch.equal(acc.scores()["0"], before)


def test_replace_keeps_only_the_last_finite_step() -> None:
    model, group = mlp()
    acc = GradientAccumulator(dict(model.named_parameters()), [group], roles=("out",))
    set_grads(model, [5.0, 0.0, 0.0, 0.0])
    acc.update(1.0, replace=True)
    set_grads(model, [0.0, 1.0, 0.0, 0.0])
    acc.update(1.0, replace=True)
    set_grads(model, [float("nan"), 0.0, 0.0, 0.0])
    acc.update(1.0, replace=True)
    assert torch.allclose(acc.scores()["0"], torch.tensor([0.0, 2.0, 0.0, 0.0]))


def test_state_dict_round_trip() -> None:
    model, group = mlp()
    params = dict(model.named_parameters())
    acc = GradientAccumulator(params, [group])
    set_grads(model, [1.0, 2.0, 3.0, 4.0])
    acc.update(2.0)
    other = GradientAccumulator(params, [group])
    other.load_state_dict(acc.state_dict())
    assert torch.equal(other.scores()["0"], acc.scores()["0"]) and other.steps == 1


def test_choose_top_and_bottom_k() -> None:
    scores = torch.tensor([0.5, 3.0, 0.1, 2.0, 0.2, 1.0, 0.3, 0.4, 0.6, 0.7])
    sources, targets = choose(scores, 0.2)  # k = 2
    assert sources.tolist() == [1, 3] and targets.tolist() == [2, 4]
    sources, targets = choose(scores, 0.15)  # k = ceil(1.5) = 2
    assert len(sources) == 2
    assert num_modified(64, 0.1) == 7 and num_modified(10, 0.1) == 1 and num_modified(1, 0.5) == 0
    assert num_modified(3, 0.5) == 1  # capped at N // 2 so sources and targets stay disjoint


def test_choose_breaks_ties_deterministically() -> None:
    a = choose(torch.zeros(8), 0.25)
    b = choose(torch.zeros(8), 0.25)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not set(a[0].tolist()) & set(a[1].tolist())
