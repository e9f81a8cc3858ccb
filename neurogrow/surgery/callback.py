"""`NeuronSurgery`: the paper's add/remove-neurons-during-training method as a Lightning callback.

Flow per modification event (Sakai & Hotta 2025):
1. accumulation epoch(s): in `on_before_optimizer_step` (gradients are unscaled under AMP and all-reduced
   under DDP by then) every neuron group's gradient is accumulated with the GR batch weight `w_b`;
2. end of the event epoch: rank each group's neurons by score, split the k = ceil(r * N) best into the
   slots of the k worst (which are removed), in place, so shapes never change (NAM + WS + GDA);
3. repair the optimizer state of the touched rows; the LR schedule just continues.
The module itself knows nothing about surgery; everything lives here.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from neurogrow.errors import UserError
from neurogrow.surgery.dormant import DormantSlots
from neurogrow.surgery.edits import remove_neurons, split_neurons
from neurogrow.surgery.events import EventLog, GroupChange, SurgeryEvent
from neurogrow.surgery.groups import find_neuron_groups
from neurogrow.surgery.optimizer_state import repair_optimizer_state
from neurogrow.surgery.scores import (
    GradientAccumulator,
    batch_weight,
    class_weights,
    neuron_norms_from,
)
from neurogrow.surgery.selection import choose, num_modified, validate_ratio

__all__ = ["NeuronSurgery"]

log = logging.getLogger(__name__)

Criterion = Literal["accum_grad", "last_batch_grad", "l1", "random"]
_GRAD_CRITERIA = ("accum_grad", "last_batch_grad")


@torch.no_grad()
def sqrt_weight_scaling(model: nn.Module, group, sources: Tensor, targets: Tensor) -> None:
    """Turn the halved consumer columns of a split (C/C') into 1/sqrt(2) of the original (sqrt(C/C'))."""
    params = dict(model.named_parameters())
    for s in group.slices:
        if s.role != "in" or s.path not in params:
            continue
        t = params[s.path]
        for units in (sources, targets):
            pos = s.indices[units].to(t.device)
            t.index_copy_(s.dim, pos, t.index_select(s.dim, pos) * math.sqrt(2.0))


def backbone_of(pl_module: nn.Module) -> nn.Module:
    """The timm backbone the surgery acts on (`pl_module.model`, unwrapped from `torch.compile`)."""
    model = getattr(pl_module, "model", None)
    if not isinstance(model, nn.Module):
        raise UserError("NeuronSurgery needs the LightningModule to keep its timm backbone in `self.model`")
    return getattr(model, "_orig_mod", model)


class NeuronSurgery(Callback):
    """Paired neuron adding/removing at epoch boundaries, driven by class-reweighted accumulated gradients.

    Args:
        ratio: modification ratio r; per group k = ceil(r * N) neurons are split and k removed.
        start_epoch, interval, last_epoch, num_events: events happen at the END of the (0-indexed) epochs
            `start_epoch + i * interval` that are `<= last_epoch` and with `i < num_events`.
            The paper's CIFAR schedule (150 epochs, every 30) is start_epoch=29, interval=30, last_epoch=119.
        accumulate_epochs: how many epochs (ending with the event epoch) gradients are accumulated over.
        criterion: accum_grad (the method) | last_batch_grad | l1 (weight L1 norm) | random.
        accumulation: "mean" (running mean of w_b * g) or "ema" (with `decay`).
        aggregate: "norm_of_sum" (norm of the accumulated gradient vector) or "sum_of_norms".
        class_weighting: "linear" (N_max / N_c, the paper) or "sqrt".
        nam, gr, ws, gda: the paper's ablation switches (neuron modification, gradient reweighting,
            weight scaling, gradient diversity assurance).
        noise: GDA's epsilon, the std of the perturbation of new neurons' norm gamma/beta.
        reinit: "split" (copy the source, function preserving) or "he" (fresh He-initialised rows).
        keep_fraction: WS factor a: the source keeps a of its consumer columns, the copy gets 1 - a
            (0.5 = C/C' for one split neuron).
        ws_mode: "linear" (C/C': source and copy share the consumer weights, function preserving) or
            "sqrt" (sqrt(C/C'): both keep 1/sqrt(2) of them, preserving the variance instead).
        gda_center: GDA draws new gamma/beta around their init values ("init") or the source's ("source").
        score_roles: which slices of a group make up "the neuron's parameters" for scoring.
        second_moment: how new rows' Adam second moment starts ("source" copy or "zero").
        schedule: "paired" (the paper) or "grow_prune" (dormant slots; see `neurogrow.surgery.dormant`).
        input_size: (C, H, W) of the probe input used to find groups; default: the first training batch.
        seed: seeds the callback's own generator (random criterion, GDA noise, dormant slots).
    """

    def __init__(
        self,
        ratio: float = 0.1,
        start_epoch: int = 29,
        interval: int = 30,
        last_epoch: int | None = None,
        num_events: int | None = None,
        accumulate_epochs: int = 1,
        criterion: Criterion = "accum_grad",
        accumulation: Literal["mean", "ema"] = "mean",
        decay: float = 0.9,
        aggregate: Literal["norm_of_sum", "sum_of_norms"] = "norm_of_sum",
        class_weighting: Literal["linear", "sqrt"] = "linear",
        nam: bool = True,
        gr: bool = True,
        ws: bool = True,
        gda: bool = True,
        noise: float = 0.01,
        reinit: Literal["split", "he"] = "split",
        keep_fraction: float = 0.5,
        ws_mode: Literal["linear", "sqrt"] = "linear",
        gda_center: Literal["init", "source"] = "init",
        score_roles: Sequence[str] = ("out", "channel", "qk"),
        second_moment: Literal["source", "zero"] = "source",
        schedule: Literal["paired", "grow_prune"] = "paired",
        input_size: Sequence[int] | None = None,
        verify: bool = True,
        seed: int = 0,
        log_indices: bool = True,
    ) -> None:
        super().__init__()
        self.ratio = validate_ratio(ratio)
        if start_epoch < 0 or interval < 1:
            raise UserError(f"need start_epoch >= 0 and interval >= 1, got {start_epoch}, {interval}")
        if not 1 <= accumulate_epochs <= interval:
            raise UserError(
                f"accumulate_epochs must lie in [1, interval={interval}], got {accumulate_epochs}"
            )
        if criterion not in ("accum_grad", "last_batch_grad", "l1", "random"):
            raise UserError(
                f"criterion must be one of accum_grad, last_batch_grad, l1, random; got {criterion!r}"
            )
        if reinit not in ("split", "he"):
            raise UserError(f"reinit must be 'split' or 'he', got {reinit!r}")
        if schedule not in ("paired", "grow_prune"):
            raise UserError(f"schedule must be 'paired' or 'grow_prune', got {schedule!r}")
        if noise < 0:
            raise UserError(f"noise must be >= 0, got {noise}")
        self.start_epoch, self.interval, self.last_epoch = int(start_epoch), int(interval), last_epoch
        self.num_events, self.accumulate_epochs = num_events, int(accumulate_epochs)
        if schedule == "grow_prune" and self._planned_events() not in (None,) and self._planned_events() % 2:
            raise UserError(
                f"schedule=grow_prune must end with a prune event, so the number of events must be even; "
                f"this schedule has {self._planned_events()} (adjust last_epoch or num_events)"
            )
        self.criterion, self.accumulation, self.decay = criterion, accumulation, decay
        self.aggregate = aggregate
        class_weights([1], class_weighting)  # validates the mode name early, with a clear message
        self.class_weighting = class_weighting
        self.nam, self.gr, self.ws, self.gda = bool(nam), bool(gr), bool(ws), bool(gda)
        self.noise, self.reinit, self.score_roles = float(noise), reinit, tuple(score_roles)
        if not 0.0 < keep_fraction < 1.0:
            raise UserError(f"keep_fraction must lie in (0, 1), got {keep_fraction}")
        self.keep_fraction, self.gda_center = float(keep_fraction), gda_center
        if ws_mode not in ("linear", "sqrt"):
            raise UserError(f"ws_mode must be 'linear' or 'sqrt', got {ws_mode!r}")
        if ws_mode == "sqrt" and self.keep_fraction != 0.5:
            raise UserError("ws_mode=sqrt scales source and copy alike: it needs keep_fraction=0.5")
        self.ws_mode = ws_mode
        self.second_moment, self.schedule = second_moment, schedule
        self.input_size = tuple(input_size) if input_size is not None else None
        self.verify, self.seed, self.log_indices = verify, int(seed), log_indices

        self.generator = torch.Generator().manual_seed(self.seed)
        self.event_count = 0
        self.window: int | None = None  # event epoch the accumulator currently belongs to
        self.groups: list = []
        self.excluded: dict[str, str] = {}
        self.accumulator: GradientAccumulator | None = None
        self.dormant: DormantSlots | None = None
        self._pending_state: dict[str, Any] | None = None
        self._labels: list[Tensor] = []
        self._weights: Tensor | None = None
        self._log: EventLog | None = None

    # ---------------------------------------------------------------- schedule
    def _planned_events(self) -> int | None:
        counts = []
        if self.last_epoch is not None:
            counts.append(max(0, (self.last_epoch - self.start_epoch) // self.interval + 1))
        if self.num_events is not None:
            counts.append(int(self.num_events))
        return min(counts) if counts else None

    def is_event_epoch(self, epoch: int) -> bool:
        """Whether surgery happens at the end of (0-indexed) `epoch`."""
        if epoch < self.start_epoch or (epoch - self.start_epoch) % self.interval:
            return False
        planned = self._planned_events()
        return planned is None or (epoch - self.start_epoch) // self.interval < planned

    def next_event_epoch(self, epoch: int) -> int | None:
        if epoch <= self.start_epoch:
            nxt = self.start_epoch
        else:
            nxt = self.start_epoch + -(-(epoch - self.start_epoch) // self.interval) * self.interval
        return nxt if self.is_event_epoch(nxt) else None

    def is_accumulating(self, epoch: int) -> bool:
        """Gradients are accumulated in the `accumulate_epochs` epochs ending with an event epoch."""
        if not self.nam or self.criterion not in _GRAD_CRITERIA:
            return False
        nxt = self.next_event_epoch(epoch)
        return nxt is not None and nxt - epoch < self.accumulate_epochs

    # ---------------------------------------------------------------- setup
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.is_global_zero:
            self._log = EventLog(trainer.default_root_dir)

    def _ensure_groups(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any) -> None:
        if self.accumulator is not None or not self.nam:
            return
        model = backbone_of(pl_module)
        device = next(model.parameters()).device
        if self.input_size is not None:
            example = torch.zeros(2, *self.input_size, device=device)
        else:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            example = x[:2].detach().to(device)
        t0 = time.perf_counter()
        was_training = model.training
        try:
            report = find_neuron_groups(model, example, verify=self.verify)  # works on a deep copy
        finally:
            model.train(was_training)
        self.groups, self.excluded = list(report.groups), dict(report.excluded)
        if not self.groups:
            raise UserError(
                f"NeuronSurgery found no verified neuron group in {type(model).__name__} "
                f"(excluded: {self.excluded}); this backbone is not supported"
            )
        for name, why in self.excluded.items():
            log.warning("neuron surgery: group %s excluded: %s", name, why)
        params = dict(model.named_parameters())
        paths = {
            s.path for g in self.groups for s in g.slices if s.role in self.score_roles and s.path in params
        }
        self.accumulator = GradientAccumulator(
            {p: params[p] for p in sorted(paths)},
            self.groups,
            mode=self.accumulation,
            decay=self.decay,
            aggregate=self.aggregate,
            roles=self.score_roles,
        )
        if self.schedule == "grow_prune":
            self.dormant = DormantSlots(self.groups)
        counts = getattr(pl_module, "class_counts", None)
        if counts is None and trainer.datamodule is not None:
            counts = getattr(trainer.datamodule, "class_counts", None)
        if counts is None and self.gr and self.criterion in _GRAD_CRITERIA:
            raise UserError(
                "gradient reweighting (gr=true) needs the training class counts: give the LightningModule "
                "a `class_counts` attribute or the datamodule a `class_counts` property (or set gr=false)"
            )
        mode = self.class_weighting if self.gr else "none"
        self._weights = class_weights(counts if counts is not None else [1], mode).to(device)
        if self._pending_state is not None:
            self._apply_state(self._pending_state, device)
            self._pending_state = None
        elif self.dormant is not None:
            self._init_dormant(model)
        if trainer.is_global_zero and self._log is not None:
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

    @property
    def neurons_total(self) -> int:
        total = sum(g.size for g in self.groups)
        return total - (self.dormant.count() if self.dormant is not None else 0)

    # ---------------------------------------------------------------- accumulation hooks
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._labels = []
        epoch = trainer.current_epoch
        if self.is_accumulating(epoch):
            window = self.next_event_epoch(epoch)
            if self.window != window:  # a new accumulation window: forget anything older
                if self.accumulator is not None:
                    self.accumulator.reset()
                if self._pending_state is not None:
                    self._pending_state["accumulator"] = None
            self.window = window

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._ensure_groups(trainer, pl_module, batch)
        if self.is_accumulating(trainer.current_epoch) and self.gr and isinstance(batch, (list, tuple)):
            self._labels.append(batch[1].detach())

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if self.accumulator is None or not self.is_accumulating(trainer.current_epoch):
            return
        if self.window is None:  # first epoch of a resumed run starts without on_train_epoch_start state
            self.window = self.next_event_epoch(trainer.current_epoch)
        w_b: float | Tensor = 1.0
        if self.gr and self._labels:
            w_b = batch_weight(torch.cat(self._labels), self._weights)
        self._labels = []
        self.accumulator.update(w_b, replace=self.criterion == "last_batch_grad")

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.dormant is not None:
            self.dormant.enforce(backbone_of(pl_module))

    # ---------------------------------------------------------------- the event
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if self.nam and self.accumulator is not None and self.is_event_epoch(epoch):
            self.run_event(trainer, pl_module)
        if self.nam and self.accumulator is not None and trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(
                    {"surgery/neurons_total": float(self.neurons_total)}, step=trainer.global_step
                )

    def _scores(self, trainer: pl.Trainer, model: nn.Module) -> dict[str, Tensor]:
        if self.criterion in _GRAD_CRITERIA:
            assert self.accumulator is not None
            if trainer.world_size > 1:
                self.accumulator.all_reduce(lambda t: trainer.strategy.reduce(t, reduce_op="mean"))
            return {k: v.cpu() for k, v in self.accumulator.scores().items()}
        if self.criterion == "l1":
            data = {n: p.detach() for n, p in model.named_parameters()}
            return {g.name: neuron_norms_from(data, g, self.score_roles, p=1.0).cpu() for g in self.groups}
        return {g.name: torch.rand(g.size, generator=self.generator) for g in self.groups}

    def _decide(self, scores: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor, Tensor]]:
        """Per group: (sources, targets, removed). Targets are slots that receive a new neuron."""
        out = {}
        phase = self.phase
        for g in self.groups:
            s = scores[g.name]
            if phase == "paired":
                src, tgt = choose(s, self.ratio)
                out[g.name] = (src, tgt, tgt)
                continue
            assert self.dormant is not None
            k = num_modified(g.size, self.ratio)
            active = (~self.dormant.mask[g.name]).nonzero().flatten()
            order = active[torch.sort(s[active], descending=True, stable=True).indices]
            empty = torch.empty(0, dtype=torch.long)
            if phase == "grow":
                slots = self.dormant.mask[g.name].nonzero().flatten()[:k]
                out[g.name] = (order[: slots.numel()], slots, empty)
            else:
                out[g.name] = (empty, empty, order.flip(0)[:k])
        return out

    @property
    def phase(self) -> str:
        if self.schedule == "paired":
            return "paired"
        return "grow" if self.event_count % 2 == 0 else "prune"

    @torch.no_grad()
    def run_event(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> SurgeryEvent | None:
        """Score, choose, edit in place, repair the optimizer state and log; identical on every rank."""
        t0 = time.perf_counter()
        model = backbone_of(pl_module)
        scores = self._scores(trainer, model)
        if not scores:
            log.warning(
                "neuron surgery at epoch %d skipped: no finite gradient was accumulated",
                trainer.current_epoch,
            )
            self.accumulator.reset()
            return None
        decisions = self._decide(scores)
        if trainer.world_size > 1:  # rank 0 decides; float ties or reduction order can never split ranks
            decisions = trainer.strategy.broadcast(decisions, src=0)
        params = dict(model.named_parameters())
        noise = self.noise if self.gda else 0.0
        changes = []
        for g in self.groups:
            src, tgt, removed = decisions[g.name]
            if removed.numel():
                remove_neurons(model, g, removed)
                if self.dormant is not None:
                    self.dormant.mark(g.name, removed, dormant=True)
                    for opt in trainer.optimizers:
                        repair_optimizer_state(opt, params, g, removed, removed, second_moment="zero")
            if tgt.numel():
                split_neurons(
                    model,
                    g,
                    src,
                    tgt,
                    weight_scaling=self.ws,
                    noise=noise,
                    reinit=self.reinit,
                    reset_stats=self.gda,
                    generator=self.generator,
                    keep_fraction=self.keep_fraction,
                    gda_center=self.gda_center,
                )
                if self.ws and self.ws_mode == "sqrt":
                    sqrt_weight_scaling(model, g, src, tgt)
                if self.dormant is not None:
                    self.dormant.mark(g.name, tgt, dormant=False)
                for opt in trainer.optimizers:
                    repair_optimizer_state(opt, params, g, src, tgt, second_moment=self.second_moment)
            changes.append(
                GroupChange.build(g, tgt, src, removed, scores.get(g.name), indices=self.log_indices)
            )
        event = SurgeryEvent(
            event=self.event_count,
            epoch=trainer.current_epoch,
            global_step=trainer.global_step,
            criterion=self.criterion,
            ratio=self.ratio,
            phase=self.phase,
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
        log.info(
            "neuron surgery event %d at epoch %d: +%d/-%d neurons over %d groups in %.3fs",
            event.event,
            event.epoch,
            event.added,
            event.removed,
            len(changes),
            event.seconds,
        )
        return event

    # ---------------------------------------------------------------- dormant slots (grow_prune)
    def _init_dormant(self, model: nn.Module) -> None:
        assert self.dormant is not None
        for g in self.groups:
            k = num_modified(g.size, self.ratio)
            slots = torch.randperm(g.size, generator=self.generator)[:k].sort().values
            remove_neurons(model, g, slots)
            self.dormant.mark(g.name, slots, dormant=True)

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
        if self.accumulator is None:
            self._pending_state = state_dict  # groups are found at the first batch; apply then
        else:
            self._apply_state(state_dict, next(iter(self.accumulator.params.values())).device)

    def _apply_state(self, state: dict[str, Any], device: torch.device) -> None:
        if state.get("accumulator") is not None and self.accumulator is not None:
            self.accumulator.load_state_dict(state["accumulator"], device)
        if state.get("dormant") is not None and self.dormant is not None:
            self.dormant.load_state_dict(state["dormant"])
