"""The loss interface: every loss is built from the training class counts."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from neurogrow.errors import UserError


class LongTailLoss(nn.Module):
    """Base class: `__init__(class_counts, ...)`, `forward(logits, targets) -> scalar`.

    The counts come from the datamodule (index = label), never from a hand-written list. They are kept
    as a buffer so the loss follows the model to any device. `class_weights` (None = unweighted) is a
    per-class weight buffer that weighted losses set at construction and that deferred re-weighting
    (`neurogrow.callbacks.deferred.DeferredReweighting`) sets during training; losses that honour it
    average per-sample losses with weights `w[y]` (the `torch.nn.functional.cross_entropy` convention).
    """

    class_weights: torch.Tensor | None
    # The loss is defined on cosine logits: the model then uses `neurogrow.models.heads.NormedLinear`.
    normed_head: bool = False

    def __init__(self, class_counts: Sequence[int]) -> None:
        super().__init__()
        counts = torch.as_tensor(list(class_counts), dtype=torch.float)
        if counts.ndim != 1 or len(counts) == 0 or bool((counts <= 0).any()):
            raise UserError(
                f"class_counts must be a non-empty list of positive counts, got {list(class_counts)}"
            )
        self.register_buffer("class_counts", counts, persistent=False)
        self.register_buffer("class_weights", None, persistent=False)

    @property
    def num_classes(self) -> int:
        return int(self.class_counts.numel())

    @property
    def log_prior(self) -> torch.Tensor:
        return torch.log(self.class_counts / self.class_counts.sum())

    def set_class_weights(self, weights: Sequence[float] | torch.Tensor | None) -> None:
        """Set (or clear with None) the per-class weights, on the device of the loss."""
        if weights is None:
            self.class_weights = None
            return
        w = torch.as_tensor(weights, dtype=torch.float, device=self.class_counts.device)
        if w.shape != self.class_counts.shape or bool((w < 0).any()):
            raise UserError(
                f"need {self.num_classes} non-negative class weights (one per class), got {w.tolist()}"
            )
        self.class_weights = w

    def weighted_mean(self, per_sample: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean of per-sample losses, weighted by `class_weights[targets]` when set (as F.cross_entropy)."""
        if self.class_weights is None:
            return per_sample.mean()
        w = self.class_weights[targets]
        return (w * per_sample).sum() / w.sum()
