"""What every run directory holds besides checkpoints: the resolved config, class counts, metrics."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

__all__ = ["write_class_counts", "write_json_atomic", "write_metrics", "write_resolved_config"]


def _file_mode() -> int:
    """The mode `open()` would give a new file: 0666 less the process umask (0644 with umask 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_json_atomic(path: Path, payload: Any) -> Path:
    """Write JSON through a temporary file and a rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, _file_mode())  # mkstemp's 0600 would hide run files from the group
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)
    return path


def write_resolved_config(cfg: DictConfig, run_dir: Path) -> Path:
    """`config.yaml`: every interpolation resolved, as the run really used it.

    A run resumed into its own directory keeps the first `config.yaml` (the run's record, which reports
    group by); a resume whose config differs (at least `ckpt_path`) is recorded beside it as
    `config.resume-<n>.yaml`.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    text = OmegaConf.to_yaml(cfg, resolve=True)
    path = run_dir / "config.yaml"
    n = 0
    while path.exists():
        if path.read_text() == text:
            return path
        n += 1
        path = run_dir / f"config.resume-{n}.yaml"
    path.write_text(text)
    return path


def write_class_counts(run_dir: Path, class_counts: Sequence[int], class_names: Sequence[str]) -> Path:
    """`class_counts.json`: the training images per class that this run actually trained on."""
    payload = {
        "class_counts": [int(c) for c in class_counts],
        "class_names": list(class_names),
        "num_train_images": int(sum(class_counts)),
        "imbalance_ratio": max(class_counts) / max(min(class_counts), 1),
    }
    return write_json_atomic(run_dir / "class_counts.json", payload)


def write_metrics(run_dir: Path, metrics: Mapping[str, Any]) -> Path:
    """`metrics.json`: final test metrics (`test/acc`, `test/acc_many`, ..., `test/acc_per_class`)."""
    return write_json_atomic(run_dir / "metrics.json", dict(metrics))
