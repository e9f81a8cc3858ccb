"""Neuron groups of real timm models: found, internal only, verified, and splits preserve the output."""

from __future__ import annotations

import copy
import functools

import pytest
import timm
import torch

import neurogrow  # noqa: F401  (registers resnet32_cifar)
from neurogrow.surgery import (
    GroupReport,
    NeuronGroup,
    TensorSlice,
    find_neuron_groups,
    tensor_at,
    verify_groups,
)
from neurogrow.surgery.verify import randomize_degenerate, split_all

# Small members of each family of the paper (and ResNet-32): (name, kwargs, input size).
# Widths/depths are reduced through the constructors' own kwargs to keep the tests fast on 2 cores.
FAMILIES = {
    "resnet32_cifar": ("resnet32_cifar", dict(num_classes=10), 32),
    "resnet18": ("resnet18", dict(num_classes=10, layers=(1, 1, 1, 1)), 32),
    "vgg11_bn": ("vgg11_bn", dict(num_classes=10, mlp_ratio=1 / 64), 32),
}


def _model(key: str) -> tuple[torch.nn.Module, torch.Tensor]:
    name, kwargs, size = FAMILIES[key]
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    return model, torch.randn(2, 3, size, size)


@functools.cache
def _found(key: str) -> tuple[torch.nn.Module, torch.Tensor, GroupReport]:
    model, x = _model(key)
    return model, x, find_neuron_groups(model, x)


def _relative_split_diff(model: torch.nn.Module, groups: list[NeuronGroup], x: torch.Tensor) -> float:
    randomize_degenerate(model)
    diff, scale = split_all(model, groups, x)
    return diff / scale


@pytest.mark.parametrize("key", list(FAMILIES))
def test_groups_are_found_verified_and_splits_preserve_output(key: str) -> None:
    model, x, report = _found(key)
    assert report.groups, f"no neuron groups found for {key}"
    assert report.excluded == {}, report.excluded
    model, _ = _model(key)  # a fresh copy: the split edits it
    assert _relative_split_diff(model, report.groups, x) < 1e-4


def test_resnet_groups_are_block_internal_only() -> None:
    model, _, report = _found("resnet18")
    # One group per BasicBlock (conv1 -> bn1 -> conv2); never the residual stream, stem or classifier.
    assert [g.name for g in report.groups] == [f"layer{i}.0.conv1" for i in range(1, 5)]
    for g in report.groups:
        roles = {(s.path, s.role) for s in g.slices}
        block = g.name.rsplit(".", 1)[0]
        assert (f"{block}.conv1.weight", "out") in roles
        assert (f"{block}.bn1.running_var", "stat") in roles
        assert (f"{block}.conv2.weight", "in") in roles
        assert not any(s.path.startswith(("fc.", "conv1.", "bn1.")) for s in g.slices)
        assert g.size == tensor_at(model, f"{block}.conv1.weight").shape[0]


def test_vgg_includes_the_convmlp_pre_logits() -> None:
    names = [g.name for g in _found("vgg11_bn")[2].groups]
    assert len(names) == 8 + 2
    assert "pre_logits.fc1" in names and "pre_logits.fc2" in names
    assert not any(n.startswith("head") for n in names)


def test_find_groups_does_not_touch_the_model() -> None:
    model, x = _model("resnet32_cifar")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    find_neuron_groups(model, x)
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_verification_excludes_a_wrong_map() -> None:
    """A group that misses a consumer or maps indices wrongly is excluded with a reason."""
    model, x, report = _found("resnet32_cifar")
    good = report.groups[0]
    n = good.size
    missing_consumer = NeuronGroup(
        "missing_consumer",
        good.kind,
        n,
        (
            *(s for s in good.slices if s.role != "in"),
            TensorSlice("layer1.1.conv2.weight", 1, torch.arange(n), "in"),
        ),
    )
    shuffled = NeuronGroup(
        "shuffled",
        good.kind,
        n,
        tuple(
            TensorSlice(s.path, s.dim, s.indices.roll(1) if s.role == "in" else s.indices, s.role)
            for s in good.slices
        ),
    )
    wrong_stat = NeuronGroup(
        "wrong_stat",
        good.kind,
        n,
        tuple(
            TensorSlice(s.path, s.dim, s.indices.flip(0) if s.role == "stat" else s.indices, s.role)
            for s in good.slices
        ),
    )
    ok, failed = verify_groups(copy.deepcopy(model), [good], x)
    assert [g.name for g in ok] == [good.name] and failed == {}
    reasons = {}
    for bad in (missing_consumer, shuffled, wrong_stat):  # one at a time: they overlap the good group
        ok, failed = verify_groups(copy.deepcopy(model), [bad], x)
        assert ok == [] and set(failed) == {bad.name}
        reasons.update(failed)
    assert "coupling probe" in reasons["missing_consumer"]
    assert "coupling probe" in reasons["shuffled"]
    assert "split probe" in reasons["wrong_stat"]


def test_bad_example_input_is_a_clear_error() -> None:
    model, _ = _model("resnet32_cifar")
    with pytest.raises(ValueError, match="batched tensor"):
        find_neuron_groups(model, torch.randn(3))
