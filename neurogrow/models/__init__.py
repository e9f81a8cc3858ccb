"""Backbones (any timm model, plus registered CIFAR ResNets) and the LightningModule."""

from neurogrow.models import cifar_resnet  # noqa: F401  (registers resnet*_cifar with timm)
from neurogrow.models.backbone import UnknownBackboneError, create_backbone
from neurogrow.models.export import load_exported
from neurogrow.models.module import LongTailClassifier

__all__ = ["LongTailClassifier", "UnknownBackboneError", "create_backbone", "load_exported"]
