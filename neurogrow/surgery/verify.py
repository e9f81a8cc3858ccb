"""Probes that prove a neuron group's map is right before any surgery uses it.

Two probes, each run on all groups at once and re-run per group only where something fails:

1. **Coupling probe** (gradients, exact): silence one probe neuron of every group by zeroing its consumer
   columns (and, for q/k groups, its q and k rows). If the map is complete, the neuron's producer rows and
   per-channel parameters can no longer influence the output, so their gradient is exactly zero, while the
   other neurons' producer rows still get a gradient. A consumer that the map missed, or a wrong index
   mapping, leaves a non-zero gradient.
2. **Split probe** (function preservation): in every group, remove k neurons (k as an event with the
   surgery's ratio chooses it, `selection.num_modified`) and write splits
   of k other neurons into their slots with noise 0 (exactly what one surgery event does). The model output
   must stay within ``rtol`` of its scale. This is the real evidence that the surgery is safe.

Probes run in eval mode on a copy whose degenerate initial values (zero-initialised last BatchNorm gamma,
layer scales of 1e-6, zero heads, identical running statistics) are replaced by random ones: with them the
probes would pass vacuously or miss a wrong statistics mapping.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurogrow.surgery.edits import remove_neurons, split_neurons, tensor_at
from neurogrow.surgery.scores import neuron_norms
from neurogrow.surgery.selection import num_modified
from neurogrow.surgery.types import NeuronGroup

__all__ = ["randomize_degenerate", "split_all", "verify_groups"]

_ZERO_GRAD_RTOL = 1e-6


@torch.no_grad()
def randomize_degenerate(model: nn.Module, generator: torch.Generator | None = None) -> None:
    """Replace constant-valued tensors (typical initialisations) by random ones: probes become sensitive."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if not t.is_floating_point() or t.numel() < 2 or t.max() != t.min():
            continue
        shape = t.shape
        if t.dim() >= 2:
            fan_in = t[0].numel()
            new = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        elif name.endswith(("bias", "running_mean")):
            new = 0.1 * torch.randn(shape, generator=g)
        else:  # gamma, running_var, layer scale: positive, around 1
            new = 0.5 + torch.rand(shape, generator=g)
        t.copy_(new.to(t.dtype))


def _output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out.float()


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def _restore(model: nn.Module, snapshot: dict[str, torch.Tensor]) -> None:
    for k, v in model.state_dict().items():
        v.copy_(snapshot[k])


def _probe_units(
    group: NeuronGroup, generator: torch.Generator, ratio: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """k random sources and k disjoint targets: as many as a surgery event with `ratio` edits."""
    k = num_modified(group.size, ratio)
    perm = torch.randperm(group.size, generator=generator)
    return perm[:k], perm[k : 2 * k]


def split_all(
    model: nn.Module,
    groups: list[NeuronGroup],
    x: torch.Tensor,
    *,
    seed: int = 0,
    noise: float = 0.0,
    ratio: float = 0.1,
) -> tuple[float, float]:
    """One paired surgery event in every group: remove k neurons, then split k others into their slots.

    Returns (max |output change caused by the splits|, max |output| before them). The removal changes the
    function by design; the splits must not, so the reference is the output after the removal.
    """
    g = torch.Generator().manual_seed(seed)
    units = [_probe_units(group, g, ratio) for group in groups]
    for group, (_, targets) in zip(groups, units):
        remove_neurons(model, group, targets)
    with torch.no_grad():
        reference = _output(model, x)
    for group, (sources, targets) in zip(groups, units):
        split_neurons(model, group, sources, targets, noise=noise, generator=g)
    with torch.no_grad():
        diff = (_output(model, x) - reference).abs().max().item()
    return diff, reference.abs().max().item()


def _structure_error(model: nn.Module, group: NeuronGroup) -> str | None:
    for s in group.slices:
        try:
            t = tensor_at(model, s.path)
        except (AttributeError, ValueError):
            return f"{s.path} does not exist"
        if not 0 <= s.dim < t.dim() or len(s.indices) != group.size:
            return f"{s.path}: dimension {s.dim} or index count does not fit"
        if s.indices.min() < 0 or s.indices.max() >= t.shape[s.dim]:
            return f"{s.path}: indices out of range along dim {s.dim}"
    if group.size < 2:
        return "fewer than 2 neurons"
    return None


def _coupling(
    model: nn.Module, groups: list[NeuronGroup], x: torch.Tensor, units: dict[str, int], weight: torch.Tensor
) -> dict[str, str]:
    """Silence each group's probe unit; return the groups where it still gets a gradient (or none is live)."""
    with torch.no_grad():
        for g in groups:
            silenced = [s for s in g.slices if s.role in ("in", "qk")]
            for s in silenced:
                t = tensor_at(model, s.path)
                t.index_fill_(s.dim, s.indices[units[g.name]].reshape(1).to(t.device), 0.0)
    model.zero_grad(set_to_none=True)
    (_output(model, x) * weight).sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    failed = {}
    for g in groups:
        norms = neuron_norms(grads, g, roles=("out", "channel", "qk"))
        i = units[g.name]
        others = torch.cat([norms[:i], norms[i + 1 :]])
        if others.max() <= 0:
            failed[g.name] = "coupling probe: no gradient reaches the group's other neurons"
        elif norms[i] > _ZERO_GRAD_RTOL * others.max():
            failed[g.name] = (
                "coupling probe: a silenced neuron still influences the output "
                f"(gradient {norms[i]:.3g} vs {others.max():.3g}); a consumer is missing from the map"
            )
    model.zero_grad(set_to_none=True)
    return failed


def verify_groups(
    model: nn.Module,
    groups: list[NeuronGroup],
    example_input: torch.Tensor,
    *,
    rtol: float = 1e-4,
    seed: int = 0,
    ratio: float = 0.1,
) -> tuple[list[NeuronGroup], dict[str, str]]:
    """Return (groups that pass both probes, {name: reason} for those that fail).

    ``model`` is modified (weights randomised where degenerate, then restored to that state between
    probes): pass a copy, as :func:`find_neuron_groups` does.
    """
    with torch.enable_grad():
        return _verify(model, groups, example_input, rtol=rtol, seed=seed, ratio=ratio)


def _verify(
    model: nn.Module,
    groups: list[NeuronGroup],
    example_input: torch.Tensor,
    *,
    rtol: float,
    seed: int,
    ratio: float,
) -> tuple[list[NeuronGroup], dict[str, str]]:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    randomize_degenerate(model, torch.Generator().manual_seed(seed))
    failed: dict[str, str] = {}
    candidates = []
    for g in groups:
        err = _structure_error(model, g)
        if err is None:
            candidates.append(g)
        else:
            failed[g.name] = f"structure: {err}"
    if not candidates:
        return [], failed
    snapshot = _snapshot(model)
    x = example_input
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        reference = _output(model, x)
    weight = torch.randn(reference.shape, generator=gen).to(reference.device)

    # 1) coupling probe: the probe unit of each group is its most influential one (never a dead unit).
    model.zero_grad(set_to_none=True)
    (_output(model, x) * weight).sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    units = {g.name: int(neuron_norms(grads, g, roles=("out", "qk")).argmax()) for g in candidates}
    suspects = _coupling(model, candidates, x, units, weight)
    _restore(model, snapshot)
    for name in list(suspects):  # re-check alone: silencing other groups at once can interfere
        group = next(g for g in candidates if g.name == name)
        again = _coupling(model, [group], x, units, weight)
        _restore(model, snapshot)
        if name in again:
            failed[name] = again[name]
    candidates = [g for g in candidates if g.name not in failed]

    # 2) split probe, bisecting to the failing groups when the joint split changes the output.
    def bisect(batch: list[NeuronGroup]) -> bool:
        """Find the failing groups in ``batch``; True if any was found."""
        diff, scale = split_all(model, batch, x, seed=seed, ratio=ratio)
        _restore(model, snapshot)
        tol = rtol * max(scale, 1e-12)
        if diff <= tol:
            return False
        reason = f"split probe: output changed by {diff:.3g} (tolerance {tol:.3g})"
        if len(batch) > 1:
            half = len(batch) // 2
            found = [bisect(batch[:half]), bisect(batch[half:])]
            if any(found):
                return True
            reason += " only when split together with other groups"
        for g in batch:
            failed[g.name] = reason
        return True

    if candidates:
        bisect(candidates)
    return [g for g in candidates if g.name not in failed], failed
