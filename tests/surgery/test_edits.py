"""In-place edits on real models: removal silences exactly one neuron, splits preserve the function, the
tensors stay the same objects, and neuron_norms measures exactly the slices asked for."""

from __future__ import annotations

import functools

import pytest
import timm
import torch

import neurogrow.models  # noqa: F401  (registers the CIFAR ResNets with timm)
from neurogrow.surgery import (
    NeuronGroup,
    find_neuron_groups,
    neuron_norms,
    remove_neurons,
    split_neurons,
    tensor_at,
)
from neurogrow.surgery.verify import randomize_degenerate


@functools.cache
def _groups() -> list[NeuronGroup]:
    model, x = _fresh()
    return find_neuron_groups(model, x).groups


def _fresh() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = timm.create_model("resnet20_cifar", num_classes=10).eval()
    randomize_degenerate(model)  # non-trivial BN statistics and gammas, so every check is sensitive
    return model, torch.randn(2, 3, 32, 32)


def _group(name: str) -> NeuronGroup:
    return next(g for g in _groups() if g.name == name)


@torch.no_grad()
def test_remove_changes_only_that_neurons_contribution() -> None:
    model, x = _fresh()
    group = _group("layer2.1.conv1")
    reference, _ = _fresh()
    y0 = model(x)
    # The original model with only neuron 3's consumer columns zeroed.
    tensor_at(reference, "layer2.1.conv2.weight")[:, 3] = 0
    expected = reference(x)
    remove_neurons(model, group, torch.tensor([3]))
    y = model(x)
    assert not torch.allclose(y, y0, atol=1e-4)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)
    assert tensor_at(model, "layer2.1.conv1.weight")[3].abs().sum() == 0
    assert tensor_at(model, "layer2.1.bn1.running_var")[3] == 1
    assert tensor_at(model, "layer2.1.conv1.weight")[4].abs().sum() > 0


@torch.no_grad()
def test_split_after_remove_preserves_function_and_tensor_identity() -> None:
    model, x = _fresh()
    ids = {n: (id(p), p.data_ptr()) for n, p in [*model.named_parameters(), *model.named_buffers()]}
    shapes = {n: p.shape for n, p in model.state_dict().items()}
    targets, sources = torch.tensor([0, 5]), torch.tensor([7, 2])
    for group in _groups():
        remove_neurons(model, group, targets)
    y_removed = model(x)
    for group in _groups():
        split_neurons(model, group, sources, targets)
    torch.testing.assert_close(model(x), y_removed, rtol=1e-5, atol=1e-5 * y_removed.abs().max().item())
    assert {n: (id(p), p.data_ptr()) for n, p in [*model.named_parameters(), *model.named_buffers()]} == ids
    assert {n: p.shape for n, p in model.state_dict().items()} == shapes
    w = tensor_at(model, "layer1.0.conv1.weight")
    torch.testing.assert_close(w[0], w[7])
    c = tensor_at(model, "layer1.0.conv2.weight")
    torch.testing.assert_close(c[:, 0], c[:, 7])  # the consumer columns are shared half/half


@torch.no_grad()
def test_split_options_noise_reinit_and_no_weight_scaling() -> None:
    group = _group("layer1.0.conv1")
    src, tgt = torch.tensor([1]), torch.tensor([2])

    model, x = _fresh()
    remove_neurons(model, group, tgt)
    y_removed = model(x)
    split_neurons(model, group, src, tgt, noise=0.1, generator=torch.Generator().manual_seed(1))
    gamma, beta = tensor_at(model, "layer1.0.bn1.weight"), tensor_at(model, "layer1.0.bn1.bias")
    assert gamma[2] != gamma[1] and abs(gamma[2] - 1) < 0.5 and abs(beta[2]) < 0.5  # GDA: around 1 and 0
    assert not torch.allclose(model(x), y_removed)

    model, _ = _fresh()
    col = tensor_at(model, "layer1.0.conv2.weight")[:, 1].clone()
    split_neurons(model, group, src, tgt, weight_scaling=False)
    torch.testing.assert_close(tensor_at(model, "layer1.0.conv2.weight")[:, 2], col)
    torch.testing.assert_close(tensor_at(model, "layer1.0.conv2.weight")[:, 1], col)

    model, _ = _fresh()
    split_neurons(model, group, src, tgt, reinit="he", generator=torch.Generator().manual_seed(0))
    w = tensor_at(model, "layer1.0.conv1.weight")
    assert not torch.allclose(w[2], w[1])
    assert (
        tensor_at(model, "layer1.0.bn1.running_var")[2] == 1
        and gamma.new_tensor(1.0) == tensor_at(model, "layer1.0.bn1.weight")[2]
    )


def test_invalid_units_are_clear_errors() -> None:
    model, _ = _fresh()
    group = _group("layer1.0.conv1")
    with pytest.raises(ValueError, match="disjoint"):
        split_neurons(model, group, torch.tensor([1]), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"lie in \[0, 16\)"):
        remove_neurons(model, group, torch.tensor([16]))
    with pytest.raises(ValueError, match="same length"):
        split_neurons(model, group, torch.tensor([1, 2]), torch.tensor([3]))


def test_neuron_norms_of_gradients_and_weights() -> None:
    group = _group("layer1.0.conv1")
    model, x = _fresh()
    model(x).square().sum().backward()
    grads = neuron_norms({n: p.grad for n, p in model.named_parameters()}, group)
    expected = (
        tensor_at(model, "layer1.0.conv1.weight").grad.flatten(1).square().sum(1)
        + tensor_at(model, "layer1.0.bn1.weight").grad.square()
        + tensor_at(model, "layer1.0.bn1.bias").grad.square()
    ).sqrt()
    torch.testing.assert_close(grads, expected)
    l1 = neuron_norms(dict(model.named_parameters()), group, roles=("out",), p=1)
    torch.testing.assert_close(l1, tensor_at(model, "layer1.0.conv1.weight").detach().abs().flatten(1).sum(1))
