"""One surgery event applied to a model: remove, split, weight scaling and optimizer-state repair.

`apply_decisions` is the whole edit of an event, given the decisions of a selection policy; it knows
nothing about Lightning, so it is testable on a bare model and optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from neurogrow.surgery.config import SurgeryConfig
from neurogrow.surgery.edits import remove_neurons, split_neurons, sqrt_weight_scaling
from neurogrow.surgery.optimizer_state import repair_optimizer_state
from neurogrow.surgery.selection import Decision
from neurogrow.surgery.types import NeuronGroup

__all__ = ["apply_decisions"]

MarkSlots = Callable[[str, torch.Tensor, bool], None]


@torch.no_grad()
def apply_decisions(
    model: nn.Module,
    groups: Sequence[NeuronGroup],
    decisions: Mapping[str, Decision],
    config: SurgeryConfig,
    optimizers: Sequence[torch.optim.Optimizer],
    generator: torch.Generator,
    mark_dormant: MarkSlots | None = None,
) -> None:
    """Edit `model` in place as `decisions` say, group by group, and repair every optimizer's state.

    Removed neurons are silenced first (their slots' optimizer state zeroed when they become dormant
    slots); then `targets[i]` receives a split of `sources[i]` with the configured weight scaling (WS),
    gradient diversity noise (GDA) and re-initialisation, and the new rows get the source's optimizer
    state as `split.second_moment` says. `mark_dormant(name, slots, dormant)` keeps grow_prune's masks.
    """
    params = dict(model.named_parameters())
    noise = config.gda.noise if config.gda.enabled else 0.0
    for g in groups:
        src, tgt, removed = decisions[g.name]
        if removed.numel():
            remove_neurons(model, g, removed)
            if mark_dormant is not None:
                mark_dormant(g.name, removed, True)
                for opt in optimizers:
                    repair_optimizer_state(opt, params, g, removed, removed, second_moment="zero")
        if not tgt.numel():
            continue
        split_neurons(
            model,
            g,
            src,
            tgt,
            weight_scaling=config.ws.enabled,
            noise=noise,
            reinit=config.split.reinit,
            reset_stats=config.gda.enabled,
            generator=generator,
            keep_fraction=config.ws.keep_fraction,
            gda_center=config.gda.center,
        )
        if config.ws.enabled and config.ws.mode == "sqrt":
            sqrt_weight_scaling(model, g, src, tgt)
        if mark_dormant is not None:
            mark_dormant(g.name, tgt, False)
        for opt in optimizers:
            repair_optimizer_state(opt, params, g, src, tgt, second_moment=config.split.second_moment)
