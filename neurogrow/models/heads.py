"""Classifier heads that replace a timm model's linear classifier (`model.get_classifier()`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neurogrow.errors import UserError

__all__ = ["NormedLinear", "use_normed_head"]


class NormedLinear(nn.Linear):
    """Cosine classifier of LDAM-DRW (`NormedLinear`): logits = <x/||x||, w_c/||w_c||>, no bias.

    A subclass of `nn.Linear` (weight `[classes, features]`) so torch-pruning and neuron surgery treat it
    as a linear layer.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)

    def reset_parameters(self) -> None:
        """LDAM-DRW's initialisation, every class vector of norm 1 (their weight is our transpose).

        Reference: ``weight.uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)`` on ``[in, out]``.
        """
        with torch.no_grad():
            self.weight.uniform_(-1, 1).renorm_(2, 0, 1e-5).mul_(1e5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))


def use_normed_head(model: nn.Module) -> NormedLinear:
    """Replace a timm model's `nn.Linear` classifier by a `NormedLinear` of the same shape (idempotent)."""
    old = model.get_classifier()
    if isinstance(old, NormedLinear):
        return old
    if type(old) is not nn.Linear:
        raise UserError(f"the cosine classifier replaces an nn.Linear classifier, got {type(old).__name__}")
    name = next(n for n, m in model.named_modules() if m is old)
    parent_name, _, attr = name.rpartition(".")
    new = NormedLinear(old.in_features, old.out_features).to(old.weight.device)
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)
    if model.get_classifier() is not new:
        raise UserError(f"could not replace the classifier {name!r} of {type(model).__name__}")
    return new
