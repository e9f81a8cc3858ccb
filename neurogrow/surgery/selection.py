"""Which neurons to split and which to remove: the k highest and the k lowest scores of a layer."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from neurogrow.errors import UserError

__all__ = ["choose", "num_modified", "validate_ratio"]


def validate_ratio(ratio: float) -> float:
    """The modification ratio r must lie in (0, 0.5]: k top and k bottom neurons must not overlap."""
    r = float(ratio)
    if not 0.0 < r <= 0.5:
        raise UserError(
            f"ratio must lie in (0, 0.5] (k = ceil(ratio * N) neurons are split and k removed per layer, "
            f"so 2k may not exceed N), got {ratio}"
        )
    return r


def num_modified(size: int, ratio: float) -> int:
    """`k = ceil(r * N)`, capped at `N // 2` so sources and targets stay disjoint (small layers)."""
    return min(math.ceil(validate_ratio(ratio) * size - 1e-9), size // 2)


def choose(scores: Tensor, ratio: float) -> tuple[Tensor, Tensor]:
    """Return `(sources, targets)`: the k best-scored neurons (to split) and the k worst (to remove).

    Ties are broken by index (stable sort on CPU), so every rank and every resumed run agrees.
    Sources are ordered best first, targets worst first; `targets[i]` receives the copy of `sources[i]`.
    """
    scores = scores.detach().float().cpu()
    k = num_modified(scores.numel(), ratio)
    if k == 0:
        empty = torch.empty(0, dtype=torch.long)
        return empty, empty
    order = torch.sort(scores, descending=True, stable=True).indices
    sources = order[:k].clone()
    targets = order.flip(0)[:k].clone()
    return sources, targets
