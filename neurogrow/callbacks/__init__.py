"""Lightning callbacks of the imbalance toolbox (each combines with neuron surgery)."""

from neurogrow.callbacks.classifier_rebalancing import (
    ClassifierRetraining,
    MaxNorm,
    NormedClassifier,
    NormedLinear,
    StageTwo,
    TauNormalization,
)
from neurogrow.callbacks.feature_weakening import MajorFeatureWeakening
from neurogrow.callbacks.logit_adjustment import PosthocLogitAdjustment
from neurogrow.losses.schedules import DeferredResampling, DeferredReweighting

__all__ = [
    "ClassifierRetraining",
    "DeferredResampling",
    "DeferredReweighting",
    "MajorFeatureWeakening",
    "MaxNorm",
    "NormedClassifier",
    "NormedLinear",
    "PosthocLogitAdjustment",
    "StageTwo",
    "TauNormalization",
]
