"""Learning-rate schedules as functions of the (fractional) epoch, stepped every optimizer step.

The schedule is wrapped in a plain function, so `LambdaLR` saves only its step count (no pickled class:
checkpoints load under torch's default `weights_only=True`); the config rebuilds the schedule on resume and
the step count continues it exactly. The neuron-surgery callback never touches it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from neurogrow.errors import UserError

__all__ = ["WarmupConstant", "WarmupCosine", "WarmupMultiStep", "per_step_scheduler"]


@dataclass
class _Warmup:
    """Linear warm-up from `warmup_start` x lr to lr over `warmup_epochs` (LDAM-DRW uses 5 epochs)."""

    max_epochs: int
    warmup_epochs: float = 0.0
    warmup_start: float = 0.0

    def __post_init__(self) -> None:
        if self.warmup_epochs < 0 or self.max_epochs < 0:
            raise UserError("warmup_epochs and max_epochs must be >= 0")

    def __call__(self, epoch: float) -> float:
        if epoch < self.warmup_epochs:
            return self.warmup_start + (1.0 - self.warmup_start) * epoch / self.warmup_epochs
        return self.after_warmup(epoch)

    def after_warmup(self, epoch: float) -> float:
        return 1.0


@dataclass
class WarmupConstant(_Warmup):
    """Constant learning rate after the warm-up."""


@dataclass
class WarmupCosine(_Warmup):
    """Cosine decay from lr to `min_lr_ratio` x lr between the end of warm-up and `max_epochs`."""

    min_lr_ratio: float = 0.0

    def after_warmup(self, epoch: float) -> float:
        span = max(self.max_epochs - self.warmup_epochs, 1e-8)
        progress = min(max((epoch - self.warmup_epochs) / span, 0.0), 1.0)
        return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class WarmupMultiStep(_Warmup):
    """Multiply the learning rate by `gamma` at each milestone epoch (LDAM-DRW: 160 and 180 of 200)."""

    milestones: Sequence[int] = ()
    gamma: float = 0.1

    def after_warmup(self, epoch: float) -> float:
        return self.gamma ** sum(epoch >= m for m in self.milestones)


def per_step_scheduler(optimizer: Optimizer, schedule: _Warmup, steps_per_epoch: int) -> LambdaLR:
    """A LambdaLR that evaluates `schedule` at the fractional epoch of every optimizer step."""
    steps = max(int(steps_per_epoch), 1)

    def factor(step: int) -> float:  # a function, not an object: LambdaLR then checkpoints no class
        return schedule(step / steps)

    return LambdaLR(optimizer, factor)
