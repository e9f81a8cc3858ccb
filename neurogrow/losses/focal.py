"""Focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from neurogrow.errors import UserError
from neurogrow.losses.base import LongTailLoss
from neurogrow.losses.weights import WeightScheme, class_weights


class FocalLoss(LongTailLoss):
    """FL = -(1 - p_y)^γ log p_y, averaged with optional per-class weights (α_c; e.g. Cui et al.'s CB focal).

    `scheme` other than ``none`` sets class-balanced weights from the start (the "CB Focal" loss);
    deferred re-weighting may set them later instead.
    """

    def __init__(
        self,
        class_counts: Sequence[int],
        gamma: float = 1.0,
        scheme: WeightScheme = "none",
        beta: float = 0.9999,
    ) -> None:
        super().__init__(class_counts)
        if gamma < 0:
            raise UserError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = gamma
        if scheme != "none":
            self.set_class_weights(class_weights(class_counts, scheme=scheme, beta=beta))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, targets[:, None]).squeeze(1)
        per_sample = -((1.0 - log_p.exp()).clamp_min(0.0) ** self.gamma) * log_p
        return self.weighted_mean(per_sample, targets)
