"""In-place neuron edits: remove (silence) and split (Net2Net copy with weight scaling) neurons of a group.

Every edit writes into the existing parameter and buffer tensors under ``torch.no_grad()``
(``index_copy_``, ``index_fill_``, ``mul_``). No ``nn.Parameter`` or buffer object is ever replaced and no
shape changes, so the optimizer, LR scheduler, AMP scaler, DDP reducer, EMA copies and ``torch.compile``
keep referring to the same tensors.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from neurogrow.surgery.types import NeuronGroup, TensorSlice

__all__ = ["remove_neurons", "split_neurons", "sqrt_weight_scaling", "tensor_at"]

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def tensor_at(model: nn.Module, path: str) -> torch.Tensor:
    """The parameter or buffer at a dotted path (the object itself, so edits land in the model)."""
    module_path, _, attr = path.rpartition(".")
    module = model.get_submodule(module_path) if module_path else model
    tensor = getattr(module, attr, None)
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{path!r} is not a parameter or buffer of {type(model).__name__}")
    return tensor


def _owner(model: nn.Module, path: str) -> nn.Module:
    module_path = path.rpartition(".")[0]
    return model.get_submodule(module_path) if module_path else model


def _check_units(group: NeuronGroup, *units: torch.Tensor) -> list[torch.Tensor]:
    out = []
    for u in units:
        u = torch.as_tensor(u, dtype=torch.long).reshape(-1).cpu()
        if len(u) and (u.min() < 0 or u.max() >= group.size):
            raise ValueError(
                f"neuron indices must lie in [0, {group.size}) for group {group.name}, got {u.tolist()}"
            )
        if len(u.unique()) != len(u):
            raise ValueError(f"neuron indices must be unique for group {group.name}, got {u.tolist()}")
        out.append(u)
    return out


def _positions(s: TensorSlice, units: torch.Tensor, device: torch.device) -> torch.Tensor:
    return s.indices[units].to(device)


def _randn(shape: torch.Size, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=device, dtype=like.dtype).to(like.device)


@torch.no_grad()
def remove_neurons(model: nn.Module, group: NeuronGroup, targets: torch.Tensor) -> None:
    """Silence neurons: zero their consumer columns (so they contribute nothing), producer rows, qk rows and
    per-channel parameters; reset their running statistics to mean 0, variance 1."""
    (targets,) = _check_units(group, targets)
    for s in group.slices:
        t = tensor_at(model, s.path)
        fill = 1.0 if (s.role == "stat" and s.path.endswith("running_var")) else 0.0
        t.index_fill_(s.dim, _positions(s, targets, t.device), fill)


@torch.no_grad()
def split_neurons(
    model: nn.Module,
    group: NeuronGroup,
    sources: torch.Tensor,
    targets: torch.Tensor,
    *,
    weight_scaling: bool = True,
    noise: float = 0.0,
    reinit: Literal["split", "he"] = "split",
    reset_stats: bool = False,
    generator: torch.Generator | None = None,
    keep_fraction: float = 0.5,
    gda_center: Literal["init", "source"] = "init",
) -> None:
    """Write a copy of neuron ``sources[i]`` into slot ``targets[i]`` (Net2Net-style split).

    With ``weight_scaling`` the consumer columns are shared: the source keeps ``keep_fraction`` (a) of them
    and the copy gets ``1 - a``; q/k rows of both are scaled by sqrt(a) and sqrt(1 - a). With ``noise=0``,
    ``reset_stats=False`` and ``reinit="split"`` the network function is unchanged. Without weight scaling
    the copy gets the full columns (the paper's ablation without WS: the neuron's contribution doubles).

    ``noise > 0`` is Gradient Diversity Assurance: the new neurons' norm gamma/beta are drawn around their
    initial values (gamma ~ N(1, noise), beta ~ N(0, noise)) or, with ``gda_center="source"``, around the
    copied values; groups without a per-channel norm get their copied producer rows perturbed by
    ``noise`` times the rows' standard deviation instead. ``reinit="he"`` draws the new producer rows (and
    depthwise filters) with He initialisation, sets norm gamma/beta to 1/0 and resets statistics.
    """
    sources, targets = _check_units(group, sources, targets)
    if len(sources) != len(targets):
        raise ValueError(f"sources and targets need the same length, got {len(sources)} and {len(targets)}")
    if set(sources.tolist()) & set(targets.tolist()):
        raise ValueError(f"sources and targets must be disjoint for group {group.name}")
    if len(sources) == 0:
        return
    a = keep_fraction
    has_norm = any(s.role == "channel" and isinstance(_owner(model, s.path), _NORMS) for s in group.slices)
    for s in group.slices:
        t = tensor_at(model, s.path)
        src, tgt = _positions(s, sources, t.device), _positions(s, targets, t.device)
        rows = t.index_select(s.dim, src)
        owner = _owner(model, s.path)
        is_norm = isinstance(owner, _NORMS)
        if s.role == "in":
            if weight_scaling:
                t.index_copy_(s.dim, tgt, rows * (1.0 - a))
                t.index_copy_(s.dim, src, rows * a)
            else:
                t.index_copy_(s.dim, tgt, rows)
        elif s.role == "stat":
            if reset_stats or reinit == "he":
                t.index_fill_(s.dim, tgt, 1.0 if s.path.endswith("running_var") else 0.0)
            else:
                t.index_copy_(s.dim, tgt, rows)
        elif reinit == "he" and (s.role in ("out", "qk") or (s.role == "channel" and not is_norm)):
            if s.role == "channel" and not isinstance(owner, nn.modules.conv._ConvNd):
                t.index_copy_(s.dim, tgt, rows)  # layer scale and the like: keep the source's value
            else:
                t.index_copy_(s.dim, tgt, _he_rows(rows, s, t, generator))
        elif reinit == "he" and is_norm:
            t.index_fill_(s.dim, tgt, 1.0 if s.path.endswith("weight") else 0.0)
        else:
            new = rows
            if noise > 0 and is_norm and s.role == "channel":
                center = rows if gda_center == "source" else torch.full_like(rows, _norm_init(s.path))
                new = center + noise * _randn(rows.shape, rows, generator)
            elif noise > 0 and not has_norm and s.role in ("out", "qk") and rows.dim() > 1:
                new = rows + noise * rows.std() * _randn(rows.shape, rows, generator)
            t.index_copy_(s.dim, tgt, new)
            if s.role == "qk" and weight_scaling:
                t.index_copy_(s.dim, tgt, t.index_select(s.dim, tgt) * math.sqrt(1.0 - a))
                t.index_copy_(s.dim, src, rows * math.sqrt(a))


def _norm_init(path: str) -> float:
    return 1.0 if path.endswith("weight") else 0.0


def _he_rows(
    rows: torch.Tensor, s: TensorSlice, t: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Kaiming-normal rows (fan_in = the tensor's size per neuron); biases start at zero."""
    if t.dim() < 2:
        return torch.zeros_like(rows)
    fan_in = t.numel() // t.shape[s.dim]
    return _randn(rows.shape, rows, generator) * math.sqrt(2.0 / fan_in)


@torch.no_grad()
def sqrt_weight_scaling(
    model: nn.Module, group: NeuronGroup, sources: torch.Tensor, targets: torch.Tensor
) -> None:
    """After a split with `keep_fraction=0.5`, leave source and copy 1/sqrt(2) of the consumer columns.

    The halved columns (C/C', function preserving) become sqrt(C/C'): the variance of the consumer's input
    is preserved instead of its mean (`ws.mode=sqrt`).
    """
    for s in group.slices:
        if s.role != "in":
            continue
        t = tensor_at(model, s.path)
        for units in (sources, targets):
            pos = _positions(s, torch.as_tensor(units, dtype=torch.long).cpu(), t.device)
            t.index_copy_(s.dim, pos, t.index_select(s.dim, pos) * math.sqrt(2.0))
