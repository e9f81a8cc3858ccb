"""Neuron surgery: neuron groups of any timm model, their verification and in-place edits, the callback.

The names below load on first use (PEP 562), so that `neurogrow.surgery.config` (used by the command
line before anything else) does not pull in Lightning and timm.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "NeuronSurgery": "callback",
    "SurgeryConfig": "config",
    "remove_neurons": "edits",
    "split_neurons": "edits",
    "tensor_at": "edits",
    "EVENTS_FILE": "events",
    "read_events": "events",
    "find_neuron_groups": "groups",
    "neuron_norms": "scores",
    "GroupReport": "types",
    "NeuronGroup": "types",
    "TensorSlice": "types",
    "verify_groups": "verify",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
