"""Backbones (any timm model, plus registered CIFAR ResNets) and the LightningModule."""

from neurogrow.models import cifar_resnet  # noqa: F401  (registers resnet*_cifar with timm)
