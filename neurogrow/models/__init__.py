"""Backbones (any timm model, plus registered CIFAR ResNets) and the LightningModule."""

# The one place the CIFAR ResNets are registered with timm (as timm/models/__init__.py imports its
# model files): every `neurogrow.models.*` import runs this first.
from neurogrow.models import cifar_resnet  # noqa: F401
from neurogrow.models.backbone import UnknownBackboneError, create_backbone
from neurogrow.models.export import load_exported
from neurogrow.models.module import LongTailClassifier

__all__ = ["LongTailClassifier", "UnknownBackboneError", "create_backbone", "load_exported"]
