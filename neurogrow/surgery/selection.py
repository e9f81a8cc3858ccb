"""Which neurons to split and which to remove: the selection policies (paired, grow-then-prune).

Every policy ranks a group's neurons by score (higher = more important) and returns a `Decision`. Ties are
broken by index (stable sort on CPU), so every rank and every resumed run agrees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import Tensor

from neurogrow.errors import UserError

__all__ = ["Decision", "choose", "decide", "grow", "num_modified", "phase", "prune"]

_EMPTY = torch.empty(0, dtype=torch.long)


class Decision(NamedTuple):
    """One group's edit: `targets[i]` receives a copy of `sources[i]`; `removed` are silenced first."""

    sources: Tensor
    targets: Tensor
    removed: Tensor


def num_modified(size: int, ratio: float) -> int:
    """`k = ceil(r * N)`, capped at `N // 2` so sources and targets stay disjoint (small layers)."""
    return min(math.ceil(ratio * size - 1e-9), size // 2)


def _ranked(scores: Tensor, among: Tensor | None = None) -> Tensor:
    """Indices best first (stable: equal scores keep index order)."""
    scores = scores.detach().float().cpu()
    if among is None:
        return torch.sort(scores, descending=True, stable=True).indices
    return among[torch.sort(scores[among], descending=True, stable=True).indices]


def choose(scores: Tensor, ratio: float) -> tuple[Tensor, Tensor]:
    """`(sources, targets)`: the k best-scored neurons (best first) and the k worst (worst first)."""
    k = num_modified(scores.numel(), ratio)
    if k == 0:
        return _EMPTY, _EMPTY
    order = _ranked(scores)
    return order[:k].clone(), order.flip(0)[:k].clone()


def paired(scores: Tensor, ratio: float) -> Decision:
    """The paper: split the k best into the slots of the k worst, which are removed."""
    sources, targets = choose(scores, ratio)
    return Decision(sources, targets, targets)


def grow(scores: Tensor, dormant: Tensor, ratio: float) -> Decision:
    """Fill up to k dormant slots with splits of the best active neurons; nothing is removed."""
    slots = dormant.nonzero().flatten()[: num_modified(scores.numel(), ratio)]
    order = _ranked(scores, (~dormant).nonzero().flatten())
    return Decision(order[: slots.numel()], slots, _EMPTY)


def prune(scores: Tensor, dormant: Tensor, ratio: float) -> Decision:
    """Remove the k worst active neurons (they become dormant slots)."""
    order = _ranked(scores, (~dormant).nonzero().flatten())
    return Decision(_EMPTY, _EMPTY, order.flip(0)[: num_modified(scores.numel(), ratio)])


def phase(policy: str, event_count: int) -> str:
    """`paired`, or for grow_prune `grow` at even and `prune` at odd events."""
    if policy == "paired":
        return "paired"
    return "grow" if event_count % 2 == 0 else "prune"


def decide(
    scores: Mapping[str, Tensor], ratio: float, step: str, dormant: Mapping[str, Tensor] | None = None
) -> dict[str, Decision]:
    """Per group name: the decision of the policy step (`phase`) from the group's scores."""
    if step == "paired":
        return {name: paired(s, ratio) for name, s in scores.items()}
    if dormant is None:
        raise UserError(f"the {step} step of policy=grow_prune needs the dormant-slot masks")
    policy = grow if step == "grow" else prune
    return {name: policy(s, dormant[name], ratio) for name, s in scores.items()}
