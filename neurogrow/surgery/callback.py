"""`NeuronSurgery`: the paper's add/remove-neurons-during-training method as a Lightning callback.

The callback is hooks plus state; the mechanism lives beside it (Sakai & Hotta 2025):
- when: :mod:`neurogrow.surgery.schedule` (event epochs, accumulation epochs);
- scores: :mod:`neurogrow.surgery.scores` (GR-weighted gradient accumulation in `on_before_optimizer_step`,
  where gradients are unscaled under AMP and all-reduced under DDP; or the l1 / random criteria);
- which neurons: :mod:`neurogrow.surgery.selection` (paired, grow-then-prune);
- the edit: :func:`neurogrow.surgery.apply.apply_decisions` (remove, split with WS and GDA, optimizer repair).
Shapes never change, so the optimizer, the LR schedule and DDP simply continue.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn

from neurogrow.errors import UserError
from neurogrow.surgery.apply import apply_decisions
from neurogrow.surgery.config import GDA, GR, WS, Schedule, Scoring, Split, SurgeryConfig
from neurogrow.surgery.dormant import DormantSlots
from neurogrow.surgery.events import EventLog, GroupChange, SurgeryEvent
from neurogrow.surgery.groups import find_neuron_groups
from neurogrow.surgery.schedule import accumulates, event_epochs, is_event_epoch, next_event_epoch
from neurogrow.surgery.scores import (
    GradientAccumulator,
    batch_weight,
    class_weights,
    random_scores,
    scored_paths,
    weight_scores,
)
from neurogrow.surgery.selection import decide, phase

__all__ = ["NeuronSurgery"]


def backbone_of(pl_module: nn.Module) -> nn.Module:
    """The timm backbone the surgery acts on (`pl_module.model`, unwrapped from `torch.compile`)."""
    model = getattr(pl_module, "model", None)
    if not isinstance(model, nn.Module):
        raise UserError("NeuronSurgery needs the LightningModule to keep its timm backbone in `self.model`")
    return getattr(model, "_orig_mod", model)


class NeuronSurgery(Callback):
    """Paired neuron adding/removing at epoch boundaries, driven by class-reweighted accumulated gradients.

    The options and their valid values are documented in :mod:`neurogrow.surgery.config` and
    ``docs/surgery.md``; each group (``schedule``, ``scoring``, ``gr``, ``ws``, ``gda``, ``split``) is a
    mapping (as Hydra passes it) or its dataclass. Invalid values and the old flat names are rejected here.
    """

    def __init__(
        self,
        ratio: float = 0.1,
        policy: str = "paired",
        schedule: Schedule | Mapping[str, Any] | None = None,
        scoring: Scoring | Mapping[str, Any] | None = None,
        gr: GR | Mapping[str, Any] | None = None,
        ws: WS | Mapping[str, Any] | None = None,
        gda: GDA | Mapping[str, Any] | None = None,
        split: Split | Mapping[str, Any] | None = None,
        verify: bool = True,
        input_size: Sequence[int] | None = None,
        seed: int = 0,
        log_indices: bool = True,
        **old_or_unknown: Any,
    ) -> None:
        super().__init__()
        groups = {"schedule": schedule, "scoring": scoring, "gr": gr, "ws": ws, "gda": gda, "split": split}
        self.config = SurgeryConfig.build(
            ratio=ratio,
            policy=policy,
            **{k: v for k, v in groups.items() if v is not None},
            verify=verify,
            input_size=input_size,
            seed=seed,
            log_indices=log_indices,
            **old_or_unknown,
        )
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.event_count = 0
        self.window: int | None = None  # event epoch the accumulated gradients belong to
        self.ready = False  # neuron groups found (at the first training batch)
        self.groups: list = []
        self.excluded: dict[str, str] = {}
        self.accumulator: GradientAccumulator | None = None  # gradient criteria only
        self.dormant: DormantSlots | None = None  # policy=grow_prune only
        self._device = torch.device("cpu")
        self._pending_state: dict[str, Any] | None = None
        self._labels: list[Tensor] = []
        self._weights: Tensor | None = None
        self._log: EventLog | None = None

    def is_accumulating(self, epoch: int) -> bool:
        """Whether gradients are accumulated during (0-indexed) `epoch`."""
        return self.config.scoring.uses_gradients and accumulates(self.config.schedule, epoch)

    @property
    def neurons_total(self) -> int:
        total = sum(g.size for g in self.groups)
        return total - (self.dormant.count() if self.dormant is not None else 0)

    # ---------------------------------------------------------------- setup
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if trainer.is_global_zero:
            self._log = EventLog(trainer.default_root_dir)
        max_epochs = trainer.max_epochs
        if max_epochs is not None and max_epochs >= 0 and not event_epochs(self.config.schedule, max_epochs):
            s = self.config.schedule
            rank_zero_warn(
                f"neuron surgery will never run: the first event is at the end of epoch {s.start_epoch} "
                f"(0-indexed; schedule.start_epoch={s.start_epoch}, num_events={s.num_events}) but the run "
                f"trains {max_epochs} epochs; lower callbacks.surgery.schedule.start_epoch"
            )

    def _find_groups(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any) -> None:
        """Find and verify the neuron groups once, on the first training batch (or `input_size`)."""
        cfg = self.config
        model = backbone_of(pl_module)
        self._device = device = next(model.parameters()).device
        if cfg.input_size is not None:
            example = torch.zeros(2, *cfg.input_size, device=device)
        else:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            example = x[:2].detach().to(device)
        t0 = time.perf_counter()
        was_training = model.training
        try:  # works on a deep copy
            report = find_neuron_groups(model, example, verify=cfg.verify, ratio=cfg.ratio)
        finally:
            model.train(was_training)
        self.groups, self.excluded = list(report.groups), dict(report.excluded)
        if not self.groups:
            raise UserError(
                f"NeuronSurgery found no verified neuron group in {type(model).__name__} "
                f"(excluded: {self.excluded}); this backbone is not supported"
            )
        for name, why in self.excluded.items():
            rank_zero_warn(f"neuron surgery: group {name} excluded: {why}")
        params = dict(model.named_parameters())
        paths = scored_paths(self.groups, params, cfg.scoring.roles)
        if cfg.scoring.uses_gradients:
            self.accumulator = GradientAccumulator(
                {p: params[p] for p in paths},
                self.groups,
                mode=cfg.scoring.accumulation,
                decay=cfg.scoring.ema_decay,
                aggregate=cfg.scoring.aggregate,
                roles=cfg.scoring.roles,
            )
        if cfg.policy == "grow_prune":
            self.dormant = DormantSlots(self.groups)
        self._weights = self._class_weights(trainer, pl_module).to(device)
        resumed = self._pending_state is not None
        if resumed:
            self._apply_state(self._pending_state)
            self._pending_state = None
        elif self.dormant is not None:
            self.dormant.initialise(model, cfg.ratio, self.generator)
        self.ready = True
        if self._log is not None and not (resumed and self._log.has_setup()):
            self._log.write(
                {
                    "type": "setup",
                    "model": type(model).__name__,
                    "groups": [{"name": g.name, "kind": g.kind, "size": g.size} for g in self.groups],
                    "excluded": self.excluded,
                    "neurons_total": self.neurons_total,
                    "seconds": time.perf_counter() - t0,
                }
            )

    def _class_weights(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Tensor:
        """GR's class weights w_c from the module's or datamodule's `class_counts` (ones without GR)."""
        gr = self.config.gr
        if not (gr.enabled and self.config.scoring.uses_gradients):
            return class_weights([1], "none")
        counts = getattr(pl_module, "class_counts", None)
        if counts is None and trainer.datamodule is not None:
            counts = getattr(trainer.datamodule, "class_counts", None)
        if counts is None:
            raise UserError(
                "gradient reweighting (gr.enabled=true) needs the training class counts: give the "
                "LightningModule a `class_counts` attribute or the datamodule a `class_counts` property "
                "(or set callbacks.surgery.gr.enabled=false)"
            )
        return class_weights(counts, gr.class_weighting)

    # ---------------------------------------------------------------- accumulation hooks
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._labels = []
        epoch = trainer.current_epoch
        if self.is_accumulating(epoch):
            window = next_event_epoch(self.config.schedule, epoch)
            if self.window != window:  # a new accumulation window: forget anything older
                if self.accumulator is not None:
                    self.accumulator.reset()
                if self._pending_state is not None:
                    self._pending_state["accumulator"] = None
            self.window = window

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if not self.ready:
            self._find_groups(trainer, pl_module, batch)
        gr = self.config.gr.enabled and isinstance(batch, (list, tuple))
        if gr and self.is_accumulating(trainer.current_epoch):
            self._labels.append(batch[1].detach())

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if self.accumulator is None or not self.is_accumulating(trainer.current_epoch):
            return
        if self.window is None:  # first epoch of a resumed run starts without on_train_epoch_start state
            self.window = next_event_epoch(self.config.schedule, trainer.current_epoch)
        w_b: float | Tensor = 1.0
        if self.config.gr.enabled and self._labels:
            w_b = batch_weight(torch.cat(self._labels), self._weights)
        self._labels = []
        self.accumulator.update(w_b, replace=self.config.scoring.criterion == "last_batch_grad")

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.dormant is not None:
            self.dormant.enforce(backbone_of(pl_module))

    # ---------------------------------------------------------------- the event
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.ready:
            return
        if is_event_epoch(self.config.schedule, trainer.current_epoch):
            self.run_event(trainer, pl_module)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(
                    {"surgery/neurons_total": float(self.neurons_total)}, step=trainer.global_step
                )

    def _scores(self, trainer: pl.Trainer, model: nn.Module) -> dict[str, Tensor]:
        criterion = self.config.scoring.criterion
        if self.accumulator is not None:
            if trainer.world_size > 1:
                self.accumulator.all_reduce(lambda t: trainer.strategy.reduce(t, reduce_op="mean"))
            return {k: v.cpu() for k, v in self.accumulator.scores().items()}
        if criterion == "l1":
            return weight_scores(dict(model.named_parameters()), self.groups, self.config.scoring.roles)
        return random_scores(self.groups, self.generator)

    @torch.no_grad()
    def run_event(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> SurgeryEvent | None:
        """Score, choose, edit in place, repair the optimizer state and log; identical on every rank."""
        t0 = time.perf_counter()
        cfg = self.config
        model = backbone_of(pl_module)
        scores = self._scores(trainer, model)
        if not scores:
            rank_zero_warn(
                f"neuron surgery at epoch {trainer.current_epoch} skipped: no finite gradient was accumulated"
            )
            self.accumulator.reset()
            return None
        step = phase(cfg.policy, self.event_count)
        decisions = decide(scores, cfg.ratio, step, self.dormant.mask if self.dormant is not None else None)
        if trainer.world_size > 1:  # rank 0 decides; float ties or reduction order can never split ranks
            decisions = trainer.strategy.broadcast(decisions, src=0)
        mark = self.dormant.mark if self.dormant is not None else None
        apply_decisions(model, self.groups, decisions, cfg, trainer.optimizers, self.generator, mark)
        changes = [
            GroupChange.build(g, d.targets, d.sources, d.removed, scores.get(g.name), indices=cfg.log_indices)
            for g, d in ((g, decisions[g.name]) for g in self.groups)
        ]
        event = SurgeryEvent(
            event=self.event_count,
            epoch=trainer.current_epoch,
            global_step=trainer.global_step,
            criterion=cfg.scoring.criterion,
            ratio=cfg.ratio,
            phase=step,
            neurons_total=self.neurons_total,
            groups=changes,
        )
        self.event_count += 1
        if self.accumulator is not None:
            self.accumulator.reset()
        self.window = None
        event.seconds = time.perf_counter() - t0
        if trainer.is_global_zero:
            if self._log is not None:
                self._log.write(event)
            for logger in trainer.loggers:
                logger.log_metrics(event.metrics(), step=trainer.global_step)
        rank_zero_info(
            f"neuron surgery event {event.event} at epoch {event.epoch}: +{event.added}/-{event.removed} "
            f"neurons over {len(changes)} groups in {event.seconds:.3f}s"
        )
        return event

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "event_count": self.event_count,
            "window": self.window,
            "generator": self.generator.get_state(),
            "accumulator": self.accumulator.state_dict() if self.accumulator is not None else None,
            "dormant": self.dormant.state_dict() if self.dormant is not None else None,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.event_count = int(state_dict["event_count"])
        self.window = state_dict["window"]
        self.generator.set_state(state_dict["generator"])
        if self.ready:
            self._apply_state(state_dict)
        else:
            self._pending_state = dict(state_dict)  # groups are found at the first batch; apply then

    def _apply_state(self, state: dict[str, Any]) -> None:
        if state.get("accumulator") is not None and self.accumulator is not None:
            self.accumulator.load_state_dict(state["accumulator"], self._device)
        if state.get("dormant") is not None and self.dormant is not None:
            self.dormant.load_state_dict(state["dormant"])
