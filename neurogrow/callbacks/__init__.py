"""Lightning callbacks of the imbalance toolbox (each combines with neuron surgery)."""

from neurogrow.callbacks.classifier_rebalancing import (
    ClassifierRetraining,
    MaxNorm,
    StageTwo,
    TauNormalization,
)
from neurogrow.callbacks.deferred import DeferredResampling, DeferredReweighting
from neurogrow.callbacks.feature_weakening import MajorFeatureWeakening
from neurogrow.callbacks.logit_adjustment import PosthocLogitAdjustment

__all__ = [
    "ClassifierRetraining",
    "DeferredResampling",
    "DeferredReweighting",
    "MajorFeatureWeakening",
    "MaxNorm",
    "PosthocLogitAdjustment",
    "StageTwo",
    "TauNormalization",
]
