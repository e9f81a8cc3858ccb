"""neurogrow: long-tailed image classification with neuron surgery during training."""

from neurogrow import models as _models  # noqa: F401  (registers resnet32_cifar with timm)
from neurogrow.precision import register_resolvers

register_resolvers()  # ${neurogrow.cpu_precision:} in conf/trainer/cpu_fast.yaml

__version__ = "0.1.0"
