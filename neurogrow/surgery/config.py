"""The surgery options: small frozen dataclasses, each checked completely when it is built.

`NeuronSurgery(ratio=..., policy=..., schedule={...}, scoring={...}, gr={...}, ws={...}, gda={...},
split={...})` takes each group as a dict (what Hydra passes) or as its dataclass. Every invalid value is
rejected here, at construction, with a message that lists the valid ones; the spellings of the flat
options before the redesign fail with the new spelling (`OLD_NAMES`), so old command lines fail loudly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, get_args

from neurogrow.errors import UserError
from neurogrow.surgery.types import Role

__all__ = [
    "GDA",
    "GR",
    "OLD_NAMES",
    "WS",
    "Schedule",
    "Scoring",
    "Split",
    "SurgeryConfig",
    "migration_message",
    "old_override_message",
]

ROLES: tuple[str, ...] = get_args(Role)

# Flat options of the callback before the redesign -> their new spelling (or what replaces them).
OLD_NAMES: dict[str, str] = {
    "nam": "conventional training = no surgery group: leave out `surgery=default` (there is no nam switch)",
    "start_epoch": "schedule.start_epoch",
    "interval": "schedule.interval",
    "last_epoch": "schedule.num_events (number of events = (last_epoch - start_epoch) // interval + 1)",
    "num_events": "schedule.num_events",
    "accumulate_epochs": "schedule.accumulate_epochs",
    "criterion": "scoring.criterion",
    "accumulation": "scoring.accumulation",
    "decay": "scoring.ema_decay",
    "aggregate": "scoring.aggregate",
    "score_roles": "scoring.roles",
    "class_weighting": "gr.class_weighting",
    "keep_fraction": "ws.keep_fraction",
    "ws_mode": "ws.mode",
    "noise": "gda.noise",
    "gda_center": "gda.center",
    "reinit": "split.reinit",
    "second_moment": "split.second_moment",
}
# Options that were booleans and are groups now.
_OLD_SWITCHES = {"gr": "gr.enabled", "ws": "ws.enabled", "gda": "gda.enabled"}


def migration_message(old: str) -> str:
    """One line telling a user of the old flat option `old` what to write instead."""
    new = OLD_NAMES.get(old) or _OLD_SWITCHES.get(old)
    if old == "nam":
        return f"callbacks.surgery.nam is gone: {new}"
    if old == "schedule":
        return "callbacks.surgery.schedule=paired|grow_prune is now callbacks.surgery.policy"
    return f"callbacks.surgery.{old} is now callbacks.surgery.{new}"


def old_override_message(overrides: Sequence[str]) -> str | None:
    """The migration message for the first command-line override that uses an old surgery spelling.

    Hydra would reject these with a generic "could not find"/"not in struct" error (or, with `+`, pass them
    on); this names the new spelling instead. Checked before Hydra composes the config.
    """
    for arg in overrides:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~").removeprefix("override ").strip()
        if not sep:
            continue
        if key == "callbacks" and "surgery" in value.strip("[]").split(","):
            return "callbacks=surgery is gone: switch neuron surgery on with surgery=default"
        if not key.startswith("callbacks.surgery."):
            continue
        name = key.removeprefix("callbacks.surgery.")
        if name in OLD_NAMES:
            return migration_message(name)
        if name in _OLD_SWITCHES and value.strip().lower() in ("true", "false"):
            return migration_message(name)
        if name == "schedule" and value.strip() in ("paired", "grow_prune"):
            return migration_message("schedule")
    return None


# ------------------------------------------------------------------ checks (one message style everywhere)
def _choice(where: str, value: Any, valid: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in valid:
        raise UserError(f"{where} must be one of {', '.join(valid)}; got {value!r}")
    return value


def _flag(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{where} must be true or false; got {value!r}")
    return value


def _integer(where: str, value: Any, low: int, high: int | None = None) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if not ok or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise UserError(f"{where} must be an integer {span}; got {value!r}")
    return int(value)


def _number(where: str, value: Any, low: float, high: float, *, low_open: bool, high_open: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        span = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise UserError(f"{where} must be a finite number in {span}; got {value!r}")
    return float(value)


def _build(cls: type, where: str, value: Any) -> Any:
    """`value` as a `cls`: itself, or built from a mapping (unknown keys named with the valid ones)."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        if where in _OLD_SWITCHES and isinstance(value, bool):
            raise UserError(migration_message(where))
        if where == "schedule" and isinstance(value, str):
            raise UserError(migration_message("schedule"))
        raise UserError(f"{where} must be a mapping of {_valid(cls)}; got {value!r}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(str(k) for k in value if k not in names)
    if unknown:
        hints = {"last_epoch": "num_events", "decay": "ema_decay", "score_roles": "roles"}
        hint = "".join(f" ({where}.{k} is now {where}.{hints[k]})" for k in unknown if k in hints)
        raise UserError(f"unknown option {where}.{unknown[0]}{hint}; valid options: {_valid(cls)}")
    return cls(**{str(k): v for k, v in value.items()})


def _valid(cls: type) -> str:
    return ", ".join(f.name for f in fields(cls))


# ------------------------------------------------------------------ the option groups
@dataclass(frozen=True)
class Schedule:
    """Events at the END of the 0-indexed epochs `start_epoch + i * interval`, `i < num_events`.

    `num_events=None` means every `interval` epochs until training ends. Gradients are accumulated over
    the `accumulate_epochs` epochs that end with an event epoch.
    """

    start_epoch: int = 29
    interval: int = 30
    num_events: int | None = 4
    accumulate_epochs: int = 1

    def __post_init__(self) -> None:
        _integer("schedule.start_epoch", self.start_epoch, 0)
        _integer("schedule.interval", self.interval, 1)
        if self.num_events is not None:
            _integer("schedule.num_events", self.num_events, 0)
        _integer("schedule.accumulate_epochs", self.accumulate_epochs, 1, self.interval)


@dataclass(frozen=True)
class Scoring:
    """How neurons are ranked: the criterion and, for gradient criteria, how gradients are accumulated."""

    criterion: str = "accum_grad"  # accum_grad | last_batch_grad | l1 | random
    accumulation: str = "mean"  # mean (running mean of w_b * grad) | ema
    ema_decay: float = 0.9
    aggregate: str = "norm_of_sum"  # norm_of_sum | sum_of_norms
    roles: tuple[str, ...] = ("out", "channel", "qk")  # which slices of a group make up a neuron's score

    CRITERIA = ("accum_grad", "last_batch_grad", "l1", "random")
    GRADIENT_CRITERIA = ("accum_grad", "last_batch_grad")

    def __post_init__(self) -> None:
        _choice("scoring.criterion", self.criterion, self.CRITERIA)
        _choice("scoring.accumulation", self.accumulation, ("mean", "ema"))
        _number("scoring.ema_decay", self.ema_decay, 0.0, 1.0, low_open=True, high_open=True)
        _choice("scoring.aggregate", self.aggregate, ("norm_of_sum", "sum_of_norms"))
        if isinstance(self.roles, str) or not isinstance(self.roles, Sequence) or not self.roles:
            raise UserError(
                f"scoring.roles must be a non-empty list of {', '.join(ROLES)}; got {self.roles!r}"
            )
        for role in self.roles:
            _choice("each of scoring.roles", role, ROLES)
        object.__setattr__(self, "roles", tuple(self.roles))

    @property
    def uses_gradients(self) -> bool:
        return self.criterion in self.GRADIENT_CRITERIA


@dataclass(frozen=True)
class GR:
    """Gradient Reweighting: batch weight `w_b` = mean class weight of the batch's labels."""

    enabled: bool = True
    class_weighting: str = "linear"  # linear: w_c = N_max / N_c (the paper) | sqrt

    def __post_init__(self) -> None:
        _flag("gr.enabled", self.enabled)
        _choice("gr.class_weighting", self.class_weighting, ("linear", "sqrt"))


@dataclass(frozen=True)
class WS:
    """Weight Scaling: source and copy share the source's consumer weights."""

    enabled: bool = True
    mode: str = "linear"  # linear = C/C' (function preserving) | sqrt = sqrt(C/C') (variance preserving)
    keep_fraction: float = 0.5  # the source keeps a of its consumer weights, the copy 1 - a

    def __post_init__(self) -> None:
        _flag("ws.enabled", self.enabled)
        _choice("ws.mode", self.mode, ("linear", "sqrt"))
        _number("ws.keep_fraction", self.keep_fraction, 0.0, 1.0, low_open=True, high_open=True)
        if self.mode == "sqrt" and self.keep_fraction != 0.5:
            raise UserError("ws.mode=sqrt scales source and copy alike: it needs ws.keep_fraction=0.5")


@dataclass(frozen=True)
class GDA:
    """Gradient Diversity Assurance: new neurons' norm gamma/beta drawn with noise, their statistics reset."""

    enabled: bool = True
    noise: float = 0.01  # epsilon: std of the perturbation
    center: str = "init"  # init: around gamma=1, beta=0 | source: around the source's values

    def __post_init__(self) -> None:
        _flag("gda.enabled", self.enabled)
        _number("gda.noise", self.noise, 0.0, math.inf, low_open=False, high_open=True)
        _choice("gda.center", self.center, ("init", "source"))


@dataclass(frozen=True)
class Split:
    """How a new neuron starts: its weights and its Adam second moment."""

    reinit: str = "split"  # split (copy the source, Net2Net) | he (fresh He-initialised rows)
    second_moment: str = "source"  # source (copy) | zero

    def __post_init__(self) -> None:
        _choice("split.reinit", self.reinit, ("split", "he"))
        _choice("split.second_moment", self.second_moment, ("source", "zero"))


GROUPS: dict[str, type] = {
    "schedule": Schedule,
    "scoring": Scoring,
    "gr": GR,
    "ws": WS,
    "gda": GDA,
    "split": Split,
}


@dataclass(frozen=True)
class SurgeryConfig:
    """Every option of `NeuronSurgery`, validated; `SurgeryConfig.build(**options)` accepts dicts."""

    ratio: float = 0.1  # r: per group k = ceil(r * N) neurons are split and k removed
    policy: str = "paired"  # paired (the paper) | grow_prune (dormant slots, even number of events)
    schedule: Schedule = Schedule()
    scoring: Scoring = Scoring()
    gr: GR = GR()
    ws: WS = WS()
    gda: GDA = GDA()
    split: Split = Split()
    verify: bool = True  # verify every neuron group with probes before editing (exclude failures)
    input_size: tuple[int, ...] | None = None  # (C, H, W) probe for finding groups; None: the first batch
    seed: int = 0  # the callback's own generator (random criterion, GDA noise, dormant slots)
    log_indices: bool = True  # write the chosen indices to surgery_events.jsonl

    def __post_init__(self) -> None:
        for name, cls in GROUPS.items():
            if not isinstance(getattr(self, name), cls):
                raise UserError(f"{name} must be a {cls.__name__}; use SurgeryConfig.build for mappings")
        try:
            _number("ratio", self.ratio, 0.0, 0.5, low_open=True, high_open=False)
        except ValueError as err:
            raise UserError(
                f"{err} (k = ceil(ratio * N) neurons of a layer are split and k removed: 2k may not exceed N)"
            ) from None
        _choice("policy", self.policy, ("paired", "grow_prune"))
        n = self.schedule.num_events
        if self.policy == "grow_prune" and n is not None and n % 2:
            raise UserError(
                f"policy=grow_prune must end with a prune event, so schedule.num_events must be even; got {n}"
            )
        _flag("verify", self.verify)
        _flag("log_indices", self.log_indices)
        _integer("seed", self.seed, 0)
        if self.input_size is not None:
            size = self.input_size
            if isinstance(size, str) or not isinstance(size, Sequence) or len(size) != 3:
                raise UserError(
                    f"input_size must be null or [C, H, W] (three positive integers); got {size!r}"
                )
            for v in size:
                _integer("each of input_size", v, 1)
            object.__setattr__(self, "input_size", tuple(int(v) for v in size))

    @classmethod
    def build(cls, **options: Any) -> SurgeryConfig:
        """From keyword options as Hydra passes them (groups as mappings); old and unknown names rejected."""
        valid = {f.name for f in fields(cls)}
        for name in options:
            if name in OLD_NAMES:
                raise UserError(migration_message(name))
        unknown = sorted(k for k in options if k not in valid)
        if unknown:
            raise UserError(f"unknown option {unknown[0]!r}; valid options: {_valid(cls)}")
        for name, group in GROUPS.items():
            if name in options:
                options[name] = _build(group, name, options[name])
        return cls(**options)
