"""Long-tailed evaluation metrics (torchmetrics-based) and plots."""

from neurogrow.metrics.plots import plot_per_class_accuracy
from neurogrow.metrics.shot_accuracy import SHOT_GROUPS, LongTailAccuracy, shot_groups

__all__ = ["SHOT_GROUPS", "LongTailAccuracy", "plot_per_class_accuracy", "shot_groups"]
