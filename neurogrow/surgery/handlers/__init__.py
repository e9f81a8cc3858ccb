"""Explicit neuron-group handlers for modules whose coupling Torch-Pruning maps wrongly.

Each handler recognises a module (by type or by the attributes its forward relies on), builds that
module's neuron groups directly from its known tensor layout, and names the submodules it owns so that
Torch-Pruning's (wrong) groups through them are dropped. Handlers are tried in order; the first match wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from torch import nn

from neurogrow.surgery.handlers.attention import FusedQKVAttentionHandler
from neurogrow.surgery.handlers.gated_conv import GatedConvBlockHandler
from neurogrow.surgery.types import NeuronGroup

__all__ = ["HANDLERS", "HandledGroups", "Handler", "find_handler_groups"]


class Handler(Protocol):
    def matches(self, module: nn.Module) -> bool: ...

    def groups(self, name: str, module: nn.Module) -> tuple[list[NeuronGroup], dict[str, str]]:
        """(groups, {group name: reason}) for groups of this module that cannot be supported."""
        ...

    def owned(self, module: nn.Module) -> list[nn.Module]: ...


HANDLERS: list[Handler] = [FusedQKVAttentionHandler(), GatedConvBlockHandler()]


@dataclass
class HandledGroups:
    groups: list[NeuronGroup] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    owned: set[nn.Module] = field(default_factory=set)


def find_handler_groups(model: nn.Module, handlers: list[Handler] | None = None) -> HandledGroups:
    """Run every handler over the model's modules."""
    result = HandledGroups()
    for name, module in model.named_modules():
        handler = next((h for h in (HANDLERS if handlers is None else handlers) if h.matches(module)), None)
        if handler is None:
            continue
        groups, excluded = handler.groups(name, module)
        result.groups.extend(groups)
        result.excluded.update(excluded)
        result.owned.update(handler.owned(module))
    return result
