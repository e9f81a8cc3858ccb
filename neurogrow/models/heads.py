"""Classifier heads that replace a timm model's linear classifier (`model.get_classifier()`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NormedLinear"]


class NormedLinear(nn.Linear):
    """Cosine classifier of LDAM-DRW (`NormedLinear`): logits = <x/||x||, w_c/||w_c||>, no bias.

    A subclass of `nn.Linear` (weight `[classes, features]`) so torch-pruning and neuron surgery treat it
    as a linear layer.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))
