"""Losses for long-tailed training; each is built from the training class counts."""

from neurogrow.losses.base import LongTailLoss
from neurogrow.losses.ce import CrossEntropy

__all__ = ["CrossEntropy", "LongTailLoss"]
