"""Find run directories under the paths a user gives and load what each one recorded.

A run directory is a folder holding the resolved `config.yaml` that `neurogrow-train` writes first; a
finished run also holds `metrics.json`. Run directories do not nest, so the walk stops at the first
`config.yaml` on every branch (the `.hydra/`, `wandb/` and `csv/` folders inside a run are never visited).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from neurogrow.errors import UserFileNotFoundError

__all__ = ["TECHNIQUES", "Run", "collect_runs", "flatten", "load_run", "method_of"]

# Technique config groups packaged into `callbacks.<name>` (issue 9); no group = conventional training.
TECHNIQUES = ("surgery", "reweighting", "feature_weakening", "logit_adjustment", "decoupling")
_SKIP_DIRS = {"checkpoints", "wandb", "csv", "__pycache__"}


@dataclass
class Run:
    """One run directory: its flattened config, final metrics (None until finished) and side files."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any] | None = None
    class_counts: list[int] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # run.json (wall time, machine), when present
    error: str | None = None  # why the run is not usable (failed, unreadable file)

    @property
    def finished(self) -> bool:
        return self.metrics is not None and "test/acc" in self.metrics

    @property
    def status(self) -> str:
        if self.finished:
            return "finished"
        return "failed" if self.error else "unfinished"

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def events_path(self) -> Path:
        return self.path / "surgery_events.jsonl"


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys; lists stay values (a list of tags is one setting)."""
    if not isinstance(tree, Mapping):
        return {prefix: tree} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value if not isinstance(value, list) else tuple(value)
    return out


def method_of(config: Mapping[str, Any]) -> str:
    """`conventional`, or the techniques a run switched on (`surgery`, `surgery+reweighting`, ...)."""
    used = [t for t in TECHNIQUES if any(k.startswith(f"callbacks.{t}.") for k in config)]
    return "+".join(used) if used else "conventional"


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def load_run(path: Path) -> Run:
    """Read one run directory; unreadable files make a failed run with the reason, never an exception."""
    path = Path(path)
    try:
        config = flatten(yaml.safe_load((path / "config.yaml").read_text()) or {})
    except (OSError, yaml.YAMLError) as err:
        return Run(path=path, config={}, error=f"config.yaml unreadable: {err}")
    config["method"] = method_of(config)
    run = Run(path=path, config=config)
    try:
        run.metrics = _read_json(path / "metrics.json")
        counts = _read_json(path / "class_counts.json")
        run.class_counts = counts["class_counts"] if counts else None
        run.info = _read_json(path / "run.json") or {}
    except (OSError, ValueError, KeyError) as err:
        run.error = f"unreadable run file: {err}"
        return run
    error_file = path / "error.txt"
    if not run.finished and error_file.is_file():
        run.error = error_file.read_text().strip().splitlines()[-1][:200] or "failed"
    return run


def _walk(root: Path) -> Iterable[Path]:
    if (root / "config.yaml").is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        if "config.yaml" in filenames:
            dirnames[:] = []
            yield Path(dirpath)
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)


def collect_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Every run directory at or below `paths`, in path order; a missing path is an error."""
    runs: dict[Path, Run] = {}
    for p in paths:
        root = Path(p)
        if not root.is_dir():
            raise UserFileNotFoundError(f"{root} is not a directory; pass run or multirun directories")
        for run_dir in _walk(root):
            runs.setdefault(run_dir.resolve(), load_run(run_dir))
    return [runs[k] for k in sorted(runs)]
