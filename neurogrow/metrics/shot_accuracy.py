"""Accuracy for long-tailed evaluation: top-1, per-class, balanced, and Many/Medium/Few shots.

Shot groups follow classifier-balancing's `shot_acc` (Kang et al. 2020): a class is *Many* with more
than 100 training images, *Few* with fewer than 20, *Medium* otherwise; a group's accuracy is the mean
per-class accuracy of its classes. A group with no classes is absent from the results (CIFAR-10-LT has
no Few classes), never reported as 0 or NaN. The states are torchmetrics states (summed over DDP ranks).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

__all__ = ["SHOT_GROUPS", "LongTailAccuracy", "shot_groups"]

SHOT_GROUPS = ("many", "medium", "few")


def shot_groups(
    class_counts: Sequence[int], many_threshold: int = 100, few_threshold: int = 20
) -> dict[str, torch.Tensor]:
    """Boolean masks over classes for the Many (> many), Few (< few) and Medium (the rest) groups."""
    counts = torch.as_tensor(list(class_counts))
    many = counts > many_threshold
    few = counts < few_threshold
    return {"many": many, "medium": ~many & ~few, "few": few}


class LongTailAccuracy(nn.Module):
    """Top-1, per-class, balanced and shot-group accuracy from the training class counts."""

    def __init__(
        self, class_counts: Sequence[int], many_threshold: int = 100, few_threshold: int = 20
    ) -> None:
        super().__init__()
        num_classes = len(class_counts)
        self.top1 = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.per_class = MulticlassAccuracy(num_classes=num_classes, average=None)
        for name, mask in shot_groups(class_counts, many_threshold, few_threshold).items():
            self.register_buffer(f"_{name}_mask", mask, persistent=False)

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        preds = logits.argmax(dim=-1) if logits.ndim > 1 else logits
        self.top1.update(preds, target)
        self.per_class.update(preds, target)

    def compute(self) -> dict[str, torch.Tensor]:
        """`acc`, `balanced_acc`, `per_class` and `acc_<group>` for each non-empty group."""
        per_class = self.per_class.compute()
        results = {"acc": self.top1.compute(), "balanced_acc": per_class.mean(), "per_class": per_class}
        for name in SHOT_GROUPS:
            mask = getattr(self, f"_{name}_mask")
            if bool(mask.any()):
                results[f"acc_{name}"] = per_class[mask].mean()
        return results

    def reset(self) -> None:
        self.top1.reset()
        self.per_class.reset()
