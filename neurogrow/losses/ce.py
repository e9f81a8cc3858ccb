"""Plain cross-entropy, optionally with label smoothing."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from neurogrow.losses.base import LongTailLoss


class CrossEntropy(LongTailLoss):
    """Softmax cross-entropy; `label_smoothing` as in `torch.nn.functional.cross_entropy`."""

    def __init__(self, class_counts: Sequence[int], label_smoothing: float = 0.0) -> None:
        super().__init__(class_counts)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
