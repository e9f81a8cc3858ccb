"""Per-neuron scores: class-reweighted gradient accumulation and the other selection criteria.

The paper accumulates each neuron's gradient over all mini-batches of a modification epoch so that
minority-class gradients, present in only a few batches, are not lost; Gradient Reweighting (GR) weighs
each batch by `w_b = mean_n w_{y_n}` with `w_c = N_max / N_c`. The accumulator works on whole parameter
tensors (one fused `_foreach_add_` per step, cheap enough to keep the epoch-time overhead low) and only
turns them into per-neuron numbers when the epoch ends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor

from neurogrow.errors import UserError
from neurogrow.surgery.types import NeuronGroup

__all__ = [
    "ClassWeighting",
    "GradientAccumulator",
    "batch_weight",
    "class_weights",
    "neuron_norms",
    "random_scores",
    "scored_paths",
    "weight_scores",
]

ClassWeighting = Literal["linear", "sqrt", "none"]
Accumulation = Literal["mean", "ema"]
Aggregate = Literal["norm_of_sum", "sum_of_norms"]


def class_weights(class_counts: Sequence[int], mode: ClassWeighting = "linear") -> Tensor:
    """`w_c = N_max / N_c` ("linear", the paper), its square root ("sqrt"), or all ones ("none")."""
    counts = torch.as_tensor(list(class_counts), dtype=torch.float64)
    if counts.ndim != 1 or counts.numel() == 0 or bool((counts <= 0).any()):
        raise UserError(f"class_counts must be a non-empty list of positive counts, got {list(class_counts)}")
    if mode == "linear":
        w = counts.max() / counts
    elif mode == "sqrt":
        w = (counts.max() / counts).sqrt()
    elif mode == "none":
        w = torch.ones_like(counts)
    else:
        raise UserError(f"class_weighting must be one of 'linear', 'sqrt', 'none', got {mode!r}")
    return w.float()


def batch_weight(labels: Tensor, weights: Tensor) -> Tensor:
    """`w_b`: the mean class weight over the batch's labels (a 0-d tensor on the labels' device)."""
    return weights.to(labels.device)[labels].mean()


def neuron_norms(
    tensors: Mapping[str, Tensor | None],
    group: NeuronGroup,
    roles: Iterable[str] = ("out", "channel", "qk"),
    p: float = 2.0,
) -> Tensor:
    """Per-neuron p-norm (shape (N,)) of `tensors[path]` over the group's slices whose role is in `roles`.

    `tensors` maps paths to tensors shaped like the parameters (gradients, accumulated gradients,
    weights). Paths missing from `tensors` (or mapped to None: no gradient) count as zero.
    """
    roles = set(roles)
    total: Tensor | None = None
    for s in group.slices:
        t = tensors.get(s.path) if s.role in roles else None
        if t is None:
            continue
        rows = (
            t.detach().index_select(s.dim, s.indices.to(t.device)).movedim(s.dim, 0).reshape(group.size, -1)
        )
        part = rows.float().abs().pow(p).sum(1)
        total = part if total is None else total + part.to(total.device)
    return torch.zeros(group.size) if total is None else total.pow(1.0 / p)


def scored_paths(
    groups: Sequence[NeuronGroup], params: Mapping[str, Tensor], roles: Iterable[str]
) -> list[str]:
    """The parameter paths that make up the scores; every group must have one (else it cannot be ranked)."""
    roles = set(roles)
    paths: set[str] = set()
    for g in groups:
        mine = {s.path for s in g.slices if s.role in roles and s.path in params}
        if not mine:
            have = sorted({s.role for s in g.slices})
            raise UserError(
                f"neuron group {g.name!r} has no parameter with a role in scoring.roles={sorted(roles)} "
                f"(its roles: {', '.join(have)}); add one of them to scoring.roles"
            )
        paths |= mine
    return sorted(paths)


def weight_scores(params: Mapping[str, Tensor], groups: Sequence[NeuronGroup], roles: Iterable[str]) -> dict:
    """The `l1` criterion: each neuron's weight L1 norm (on the CPU)."""
    data = {n: p.detach() for n, p in params.items()}
    return {g.name: neuron_norms(data, g, roles, p=1.0).cpu() for g in groups}


def random_scores(groups: Sequence[NeuronGroup], generator: torch.Generator) -> dict[str, Tensor]:
    """The `random` criterion: uniform scores from the callback's own generator."""
    return {g.name: torch.rand(g.size, generator=generator) for g in groups}


class GradientAccumulator:
    """Accumulates `w_b * grad` for a fixed set of parameters, as a running mean or an EMA.

    `aggregate="norm_of_sum"` (default) keeps the gradient *vectors* and scores a neuron by the norm of its
    accumulated gradient, so consistent directions add up and noise cancels; `"sum_of_norms"` instead
    averages the per-batch per-neuron norms (the other reading of the paper's lost formula).
    """

    def __init__(
        self,
        params: Mapping[str, Tensor],
        groups: Sequence,
        *,
        mode: Accumulation = "mean",
        decay: float = 0.9,
        aggregate: Aggregate = "norm_of_sum",
        roles: Iterable[str] = ("out", "channel", "qk"),
    ) -> None:
        self.params = dict(params)
        self.groups = list(groups)
        self.mode, self.decay, self.aggregate, self.roles = mode, float(decay), aggregate, tuple(roles)
        self.steps = 0
        self.buffers: dict[str, Tensor] = {}

    def reset(self) -> None:
        self.steps, self.buffers = 0, {}

    def update(self, w_b: float | Tensor, *, replace: bool = False) -> bool:
        """Add the current `.grad` of every tracked parameter with weight `w_b`; False if skipped.

        `replace=True` keeps only this step (the last-batch criterion), still only if it is finite.

        Steps with a missing or non-finite gradient are skipped (AMP overflow steps, for example), so one bad
        batch does not poison the epoch's scores. A tensor `w_b` is read together with the finiteness
        check, so a step costs one device synchronisation (AMP's scaler synchronises there anyway).
        """
        names = list(self.params)
        grads = [self.params[n].grad for n in names]
        if any(g is None for g in grads):
            return False
        total = torch.stack(torch._foreach_norm(grads)).sum().float()
        if isinstance(w_b, Tensor):
            total_norm, w_b = torch.stack([total, w_b.detach().to(total.device).float()]).tolist()
        else:
            total_norm = total.item()
        if not math.isfinite(total_norm):
            return False
        if self.aggregate == "norm_of_sum":
            cur = dict(zip(names, grads))
        else:
            gdict = dict(zip(names, grads))
            cur = {g.name: neuron_norms(gdict, g, self.roles) for g in self.groups}
        if replace:
            self.reset()
        if not self.buffers:
            self.buffers = {k: torch.zeros_like(v, dtype=torch.float32) for k, v in cur.items()}
        keys = list(cur)
        bufs = [self.buffers[k] for k in keys]
        vals = [cur[k].float() for k in keys]
        if self.mode == "mean":
            torch._foreach_add_(bufs, vals, alpha=w_b)
        else:
            torch._foreach_mul_(bufs, self.decay)
            torch._foreach_add_(bufs, vals, alpha=(1.0 - self.decay) * w_b)
        self.steps += 1
        return True

    def scores(self) -> dict[str, Tensor]:
        """Per-group per-neuron scores (higher = more important); empty if no step was accumulated."""
        if not self.steps:
            return {}
        scale = 1.0 / self.steps if self.mode == "mean" else 1.0
        if self.aggregate == "norm_of_sum":
            return {g.name: neuron_norms(self.buffers, g, self.roles) * scale for g in self.groups}
        return {g.name: self.buffers[g.name] * scale for g in self.groups}

    def all_reduce(self, reduce) -> None:
        """Average the buffers across ranks with `reduce(tensor) -> tensor` (the strategy's mean-reduce).

        Gradients are already all-reduced under DDP, but `w_b` comes from each rank's own labels; the mean
        over ranks of `w_b^r * g` is exactly the global batch weight times `g`.
        """
        for k in list(self.buffers):
            self.buffers[k] = reduce(self.buffers[k])

    def state_dict(self) -> dict:
        return {
            "steps": self.steps,
            "buffers": {k: v.detach().cpu().clone() for k, v in self.buffers.items()},
        }

    def load_state_dict(self, state: Mapping, device: torch.device | None = None) -> None:
        self.steps = int(state["steps"])
        self.buffers = {k: v.to(device) if device is not None else v for k, v in state["buffers"].items()}
