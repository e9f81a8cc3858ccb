"""neurogrow: long-tailed image classification with neuron surgery during training.

`import neurogrow` is light: the subpackages (and timm, torchvision, Lightning behind them) load on first
use (PEP 562), so the command-line tools start fast. Importing `neurogrow.models` (or anything below it)
registers the CIFAR ResNets (``resnet32_cifar``, ...) with timm: `import neurogrow.models` before
`timm.create_model("resnet32_cifar")`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.1.0"

_SUBPACKAGES = ("callbacks", "cli", "data", "errors", "losses", "metrics", "models", "report", "surgery")

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name: str) -> ModuleType:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
