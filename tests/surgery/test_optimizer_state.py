"""Optimizer-state repair after surgery on a real timm model with real SGD(momentum) and AdamW."""

from __future__ import annotations

import functools

import pytest
import timm
import torch
from torch import nn

import neurogrow.models  # noqa: F401  (registers the CIFAR ResNets with timm)
from neurogrow.surgery.edits import split_neurons
from neurogrow.surgery.groups import find_neuron_groups
from neurogrow.surgery.optimizer_state import repair_optimizer_state
from neurogrow.surgery.types import NeuronGroup, TensorSlice

SOURCES, TARGETS = torch.tensor([0, 1]), torch.tensor([6, 7])


def setup_model(
    make_opt,
) -> tuple[nn.Module, object, torch.optim.Optimizer, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    model = timm.create_model("resnet20_cifar", num_classes=4, widths=(8, 16, 32))
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 4, (8,))
    group = first_group()
    opt = make_opt(model.parameters())
    for _ in range(4):
        step(model, opt, (x, y))
    return model, group, opt, (x, y)


@functools.cache
def first_group():
    """The first inner-channel group of the model (found once: the architecture never changes)."""
    model = timm.create_model("resnet20_cifar", num_classes=4, widths=(8, 16, 32))
    return next(
        g for g in find_neuron_groups(model, torch.zeros(2, 3, 32, 32), verify=False).groups if g.size == 8
    )


def step(model: nn.Module, opt: torch.optim.Optimizer, batch) -> None:
    opt.zero_grad()
    nn.functional.cross_entropy(model(batch[0]), batch[1]).backward()
    opt.step()


def new_mask(group, name: str, p: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the entries of parameter `name` that belong to the given neurons of `group`."""
    mask = torch.zeros_like(p, dtype=torch.bool)
    for s in group.slices:
        if s.path == name:
            mask.index_fill_(s.dim, s.indices[units], True)
    return mask


def snapshot(opt: torch.optim.Optimizer) -> dict:
    return {p: {k: v.clone() for k, v in st.items() if torch.is_tensor(v)} for p, st in opt.state.items()}


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=5e-4),
        lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.05),
    ],
    ids=["sgd", "adamw"],
)
def test_untouched_state_is_bitwise_kept_and_new_rows_start_fresh(make_opt) -> None:
    model, group, opt, _ = setup_model(make_opt)
    params = dict(model.named_parameters())
    objects = [id(p) for p in model.parameters()]
    before = snapshot(opt)
    split_neurons(model, group, SOURCES, TARGETS, noise=0.0)
    repaired = repair_optimizer_state(opt, params, group, SOURCES, TARGETS)
    assert repaired and set(repaired) <= group.paths()
    assert [id(p) for p in model.parameters()] == objects  # surgery never replaces a Parameter
    assert all(p is q for p, q in zip(opt.param_groups[0]["params"], model.parameters()))
    for name, p in params.items():
        new = new_mask(group, name, p, TARGETS)
        src = new_mask(group, name, p, SOURCES)
        for key, old in before[p].items():
            cur = opt.state[p][key]
            if cur.shape != p.shape:
                assert torch.equal(cur, old), f"{name}.{key}: scalar state must be left alone"
                continue
            assert torch.equal(cur[~new], old[~new]), f"{name}.{key}: untouched entries changed"
            if key == "exp_avg_sq":  # copied from the neuron each new one was split from
                assert torch.equal(cur[new].sort().values, old[src].sort().values)
            else:
                assert bool((cur[new] == 0).all()), f"{name}.{key}: new entries must start at zero"


def first_update_of_new_rows(second_moment: str, lr: float = 1e-3) -> float:
    """max |first AdamW update| of split neurons' rows after 600 steps, in units of lr.

    A fresh Adam moves every entry by about lr on its first step; that is the yardstick. beta2 = 0.995
    makes bias correction ~ 1 after 600 steps (as at a real event in epoch 30 with the default 0.999)
    while a small MLP keeps the test fast.
    """
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    idx = torch.arange(32)
    group = NeuronGroup(
        "0",
        "linear_hidden",
        32,
        (
            TensorSlice("0.weight", 0, idx, "out"),
            TensorSlice("0.bias", 0, idx, "out"),
            TensorSlice("2.weight", 1, idx, "in"),
        ),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.8, 0.995), weight_decay=0.0)
    batch = (torch.randn(64, 16), torch.randint(0, 4, (64,)))
    for _ in range(600):
        step(model, opt, batch)
    split_neurons(model, group, SOURCES, TARGETS, noise=0.0)
    repair_optimizer_state(
        opt, dict(model.named_parameters()), group, SOURCES, TARGETS, second_moment=second_moment
    )
    before = model[0].weight.detach().clone()
    step(model, opt, batch)
    return ((model[0].weight.detach() - before)[TARGETS].abs().max() / lr).item()


def test_new_rows_get_no_oversized_first_adam_update() -> None:
    assert first_update_of_new_rows("source") <= 1.0
    # Without seeding the second moment, the shared step count makes new rows jump by
    # ~(1 - beta1) / sqrt(1 - beta2) ~ 2.8 lr: the problem the repair exists for.
    assert first_update_of_new_rows("zero") > 2.0


def test_bad_arguments_are_rejected() -> None:
    model, group, opt, _ = setup_model(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9))
    params = dict(model.named_parameters())
    with pytest.raises(ValueError, match="second_moment"):
        repair_optimizer_state(opt, params, group, SOURCES, TARGETS, second_moment="mean")
    with pytest.raises(ValueError, match="same length"):
        repair_optimizer_state(opt, params, group, SOURCES, TARGETS[:1])
