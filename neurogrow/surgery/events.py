"""Surgery event records: one JSON line per event in `surgery_events.jsonl`, plus logger metrics.

The JSON lines are the ground truth for analysis (which neurons were split/removed, per layer, and how
their scores looked); the logger gets the scalar summary so the paper's phases show up in a dashboard.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from neurogrow.errors import UserFileNotFoundError

__all__ = ["EVENTS_FILE", "EventLog", "GroupChange", "SurgeryEvent", "read_events"]

EVENTS_FILE = "surgery_events.jsonl"


@dataclass
class GroupChange:
    """What one event did to one neuron group (indices are neuron positions within the group)."""

    name: str
    kind: str
    size: int
    added: list[int]  # slots that now hold a new neuron
    sources: list[int]  # the neuron each new one was split from (same order as `added`)
    removed: list[int]  # neurons removed (in paired mode the same slots as `added`, reused)
    n_added: int = 0
    n_removed: int = 0
    score_min: float = float("nan")
    score_mean: float = float("nan")
    score_max: float = float("nan")

    @classmethod
    def build(
        cls,
        group,
        added: Tensor,
        sources: Tensor,
        removed: Tensor,
        scores: Tensor | None,
        *,
        indices: bool = True,
    ) -> GroupChange:
        """`indices=False` keeps only the counts (smaller logs for very wide models)."""
        stats = {}
        if scores is not None and scores.numel():
            s = scores.detach().float().cpu()
            stats = {"score_min": s.min().item(), "score_mean": s.mean().item(), "score_max": s.max().item()}
        return cls(
            name=group.name,
            kind=group.kind,
            size=group.size,
            added=added.tolist() if indices else [],
            sources=sources.tolist() if indices else [],
            removed=removed.tolist() if indices else [],
            n_added=added.numel(),
            n_removed=removed.numel(),
            **stats,
        )


@dataclass
class SurgeryEvent:
    event: int
    epoch: int
    global_step: int
    criterion: str
    ratio: float
    phase: str  # "paired" (add k + remove k), "grow" or "prune" (grow-then-prune schedule)
    seconds: float = 0.0
    neurons_total: int = 0  # active neurons over all groups after the event
    groups: list[GroupChange] = field(default_factory=list)
    time: float = field(default_factory=time.time)

    @property
    def added(self) -> int:
        return sum(g.n_added for g in self.groups)

    @property
    def removed(self) -> int:
        return sum(g.n_removed for g in self.groups)

    def metrics(self) -> dict[str, float]:
        """Scalar summary for the logger (`surgery/...`)."""
        out = {
            "surgery/added": float(self.added),
            "surgery/removed": float(self.removed),
            "surgery/neurons_total": float(self.neurons_total),
            "surgery/event_seconds": float(self.seconds),
            "surgery/event": float(self.event),
        }
        means = [g.score_mean for g in self.groups if g.score_mean == g.score_mean]
        if means:
            out["surgery/score_mean"] = float(torch.tensor(means).mean())
        return out

    def to_json(self) -> str:
        d = asdict(self)
        d["type"] = "event"
        d["added"], d["removed"] = self.added, self.removed
        return json.dumps(d)


class EventLog:
    """Appends records to `<run_dir>/surgery_events.jsonl` (call only on global rank zero)."""

    def __init__(self, run_dir: str | Path | None) -> None:
        self.path = Path(run_dir) / EVENTS_FILE if run_dir is not None else None

    def has_setup(self) -> bool:
        """Whether the log already holds a setup record (a resumed run must not write a second one)."""
        return (
            self.path is not None
            and self.path.is_file()
            and any(r.get("type") == "setup" for r in _records(self.path))
        )

    def write(self, record: SurgeryEvent | dict) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = record.to_json() if isinstance(record, SurgeryEvent) else json.dumps(record)
        with self.path.open("a") as f:
            f.write(line + "\n")


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_events(path: str | Path) -> list[dict]:
    """Read `surgery_events.jsonl` (a run directory or the file itself); only `type == "event"` records."""
    p = Path(path)
    if p.is_dir():
        p = p / EVENTS_FILE
    if not p.is_file():
        raise UserFileNotFoundError(f"no surgery event log at {p}; was the run trained with surgery=default?")
    return [r for r in _records(p) if r.get("type") == "event"]
