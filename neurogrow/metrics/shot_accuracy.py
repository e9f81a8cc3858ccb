"""Accuracy for long-tailed evaluation: top-1, per-class, balanced, and Many/Medium/Few shots.

Shot groups follow classifier-balancing's `shot_acc` (Kang et al. 2020) by default: a class is *Many*
with more than 100 training images, *Few* with fewer than 20, *Medium* otherwise; ``many_inclusive=True``
is the seed paper's convention (Sakai & Hotta: *at least* 100 images is Many), which differs only for a
class of exactly 100 images. A group's accuracy is the mean per-class accuracy of its classes.

As in `shot_acc`, only classes with evaluated samples count: a class that no evaluated sample belongs to
(e.g. under `limit_val_batches`) has per-class accuracy NaN and is left out of the balanced accuracy and of
its group; a group with no such class is absent from the results, never reported as 0 or NaN. The states
are torchmetrics states (summed over DDP ranks).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassStatScores

from neurogrow.errors import UserError

__all__ = ["SHOT_GROUPS", "LongTailAccuracy", "shot_groups", "validate_shot_thresholds"]

SHOT_GROUPS = ("many", "medium", "few")


def shot_groups(
    class_counts: Sequence[int],
    many_threshold: int = 100,
    few_threshold: int = 20,
    many_inclusive: bool = False,
) -> dict[str, torch.Tensor]:
    """Boolean masks over classes: Many (> many, or >= with `many_inclusive`), Few (< few), Medium."""
    counts = torch.as_tensor(list(class_counts))
    many = counts >= many_threshold if many_inclusive else counts > many_threshold
    few = counts < few_threshold
    return {"many": many, "medium": ~many & ~few, "few": few}


def validate_shot_thresholds(many_threshold: int, few_threshold: int) -> None:
    """Refuse thresholds that would make the Medium group ill-defined."""
    if not 0 <= few_threshold <= many_threshold:
        raise UserError(
            f"metrics: need 0 <= few_threshold <= many_threshold, got few_threshold={few_threshold} and "
            f"many_threshold={many_threshold}."
        )


class LongTailAccuracy(nn.Module):
    """Top-1, per-class, balanced and shot-group accuracy from the training class counts."""

    def __init__(
        self,
        class_counts: Sequence[int],
        many_threshold: int = 100,
        few_threshold: int = 20,
        many_inclusive: bool = False,
    ) -> None:
        super().__init__()
        validate_shot_thresholds(many_threshold, few_threshold)
        num_classes = len(class_counts)
        self.top1 = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.per_class = MulticlassAccuracy(num_classes=num_classes, average=None)
        # tp, fp, tn, fn, support per class: the support tells which classes were evaluated at all
        self.stats = MulticlassStatScores(num_classes=num_classes, average=None)
        groups = shot_groups(class_counts, many_threshold, few_threshold, many_inclusive)
        for name, mask in groups.items():
            self.register_buffer(f"_{name}_mask", mask, persistent=False)

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        preds = logits.argmax(dim=-1) if logits.ndim > 1 else logits
        self.top1.update(preds, target)
        self.per_class.update(preds, target)
        self.stats.update(preds, target)

    def compute(self) -> dict[str, torch.Tensor]:
        """`acc`, `balanced_acc`, `per_class`, `classes_evaluated` and `acc_<group>` per evaluated group."""
        evaluated = self.stats.compute()[:, -1] > 0
        per_class = torch.where(evaluated, self.per_class.compute(), torch.nan)
        results = {
            "acc": self.top1.compute(),
            "balanced_acc": per_class[evaluated].mean()
            if bool(evaluated.any())
            else per_class.new_tensor(0.0),
            "per_class": per_class,
            "classes_evaluated": evaluated.sum().float(),
        }
        for name in SHOT_GROUPS:
            mask = getattr(self, f"_{name}_mask") & evaluated
            if bool(mask.any()):
                results[f"acc_{name}"] = per_class[mask].mean()
        return results

    def reset(self) -> None:
        self.top1.reset()
        self.per_class.reset()
        self.stats.reset()
