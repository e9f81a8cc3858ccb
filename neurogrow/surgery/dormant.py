"""Dormant neuron slots for the optional grow-then-prune schedule.

Tensors never change shape, so a network whose neuron count really changes needs spare slots: a dormant
slot is a neuron whose parameters are held at the neutral values of `remove_neurons` (zero in-columns and
out-rows, ...), so it contributes nothing. `policy=grow_prune` starts with k = ceil(r * N) dormant slots
per group (the width trained before the first event is N - k), a grow event fills them with splits of
the k best neurons (width N), the next prune event empties the k worst (back to N - k), and the schedule
must end with a prune. The weights always have the original architecture's shapes, so export loads them
into `timm.create_model(name)` with `strict=True`; dormant slots are exactly-zero neurons there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from neurogrow.surgery.edits import remove_neurons
from neurogrow.surgery.selection import num_modified

__all__ = ["DormantSlots"]


class DormantSlots:
    """Which slots of each group are dormant, and keeping them at zero after every optimizer step."""

    def __init__(self, groups: Sequence) -> None:
        self.groups = {g.name: g for g in groups}
        self.mask: dict[str, Tensor] = {g.name: torch.zeros(g.size, dtype=torch.bool) for g in groups}

    def mark(self, name: str, slots: Tensor, dormant: bool) -> None:
        self.mask[name][slots.cpu()] = dormant

    @torch.no_grad()
    def initialise(self, model: nn.Module, ratio: float, generator: torch.Generator) -> None:
        """Start with k = ceil(r * N) random dormant slots per group (the width before the first grow)."""
        for name, g in self.groups.items():
            slots = torch.randperm(g.size, generator=generator)[: num_modified(g.size, ratio)].sort().values
            remove_neurons(model, g, slots)
            self.mark(name, slots, True)

    def count(self) -> int:
        return int(sum(int(m.sum()) for m in self.mask.values()))

    @torch.no_grad()
    def enforce(self, model: nn.Module) -> None:
        """Re-neutralise dormant slots: weight decay, momentum or biases could otherwise revive them."""
        for name, m in self.mask.items():
            if bool(m.any()):
                remove_neurons(model, self.groups[name], m.nonzero().flatten())

    def state_dict(self) -> dict[str, Tensor]:
        return {k: v.clone() for k, v in self.mask.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        for k, v in state.items():
            if k in self.mask:
                self.mask[k] = v.clone().bool()
