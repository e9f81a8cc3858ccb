"""The loss interface: every loss is built from the training class counts."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class LongTailLoss(nn.Module):
    """Base class: `__init__(class_counts, ...)`, `forward(logits, targets) -> scalar`.

    The counts come from the datamodule (index = label), never from a hand-written list. They are kept
    as a buffer so the loss follows the model to any device.
    """

    def __init__(self, class_counts: Sequence[int]) -> None:
        super().__init__()
        counts = torch.as_tensor(list(class_counts), dtype=torch.float)
        if counts.ndim != 1 or len(counts) == 0 or bool((counts <= 0).any()):
            raise ValueError(f"class_counts must be a non-empty list of positive counts, got {list(class_counts)}")
        self.register_buffer("class_counts", counts, persistent=False)

    @property
    def num_classes(self) -> int:
        return int(self.class_counts.numel())

    @property
    def log_prior(self) -> torch.Tensor:
        return torch.log(self.class_counts / self.class_counts.sum())
