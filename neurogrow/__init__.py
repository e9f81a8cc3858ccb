"""neurogrow: long-tailed image classification with neuron surgery during training."""

from neurogrow import models as _models  # noqa: F401  (registers resnet32_cifar with timm)

__version__ = "0.1.0"
