"""Rebuild the optimizer state after a surgery event, in place, without touching untouched neurons.

Surgery rewrites some rows/columns of existing parameters. The optimizer keeps per-element state for them
(SGD's momentum buffer, Adam's first and second moments); left alone, a new neuron would inherit the
momentum of the neuron that used to live in its slot. The repair:

- untouched entries keep their state bit for bit (so the optimizer and LR schedule simply continue);
- every entry of a new neuron (the `targets` slots, in every slice of its group) gets zero momentum /
  zero first moment;
- Adam's step count is one scalar per tensor, so bias correction for a new row is already ~1 and a zero
  second moment would make its first update about `(1 - beta1) / sqrt(1 - beta2)` ~ 3x the learning rate.
  By default (`second_moment="source"`) a new neuron's second moment is copied from the neuron it was
  split from: the copy sees gradients of the same scale, so its first update is at most the source's;
- the source neurons' rescaled input columns keep their state: halving a weight does not change the
  statistics of its gradient, which is what the state estimates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from neurogrow.errors import UserError

__all__ = ["SECOND_MOMENT_KEYS", "repair_optimizer_state"]

SecondMoment = Literal["source", "zero"]
SECOND_MOMENT_KEYS = ("exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum")


@torch.no_grad()
def repair_optimizer_state(
    optimizer: torch.optim.Optimizer,
    params: Mapping[str, nn.Parameter],
    group,
    sources: Tensor,
    targets: Tensor,
    *,
    second_moment: SecondMoment = "source",
) -> list[str]:
    """Reset the state of `group`'s new neurons (`targets`) in `optimizer`; return the repaired paths.

    `params` maps dotted names to the model's parameters (`dict(model.named_parameters())`). Any state
    tensor shaped like its parameter is treated as per-element state, so optimizers beyond SGD/Adam(W)
    get the safe default (new entries zeroed).
    """
    if second_moment not in ("source", "zero"):
        raise UserError(f"second_moment must be 'source' or 'zero', got {second_moment!r}")
    if sources.numel() != targets.numel():
        raise UserError("sources and targets must have the same length")
    repaired: list[str] = []
    if targets.numel() == 0:
        return repaired
    for s in group.slices:
        p = params.get(s.path)
        if p is None or p not in optimizer.state:
            continue
        state = optimizer.state[p]
        idx = s.indices.to(p.device)
        new = idx[targets.to(p.device)]
        src = idx[sources.to(p.device)]
        for key, val in state.items():
            if not isinstance(val, Tensor) or val.shape != p.shape:
                continue
            if second_moment == "source" and key in SECOND_MOMENT_KEYS:
                val.index_copy_(s.dim, new, val.index_select(s.dim, src))
            else:
                val.index_fill_(s.dim, new, 0.0)
        repaired.append(s.path)
    return repaired
