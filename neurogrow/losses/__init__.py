"""Losses for long-tailed training; each is built from the training class counts."""

from neurogrow.losses.base import LongTailLoss
from neurogrow.losses.ce import (
    BalancedSoftmax,
    CrossEntropy,
    LDAMLoss,
    LogitAdjustedLoss,
    WeightedCrossEntropy,
)
from neurogrow.losses.focal import FocalLoss
from neurogrow.losses.weights import class_weights

__all__ = [
    "BalancedSoftmax",
    "CrossEntropy",
    "FocalLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "LongTailLoss",
    "WeightedCrossEntropy",
    "class_weights",
]
