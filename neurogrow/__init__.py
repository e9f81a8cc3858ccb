"""neurogrow: long-tailed image classification with neuron surgery during training."""

# As `import timm` does: importing the package imports its models package, whose __init__ registers
# the CIFAR ResNets (`resnet*_cifar`) with timm's registry, so `timm.create_model` knows them.
from neurogrow import models as _models  # noqa: F401
from neurogrow.precision import register_resolvers

register_resolvers()  # ${neurogrow.cpu_precision:} in conf/trainer/cpu_fast.yaml

__version__ = "0.1.0"
