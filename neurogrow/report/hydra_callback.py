"""Print the report when a sweep ends, and write it into the sweep directory (`<sweep dir>/report/`).

Hydra skips `on_multirun_end` when a job failed (the sweeper re-raises the failure first), which is when a
summary matters most: `neurogrow-train` then calls `report_unfinished_sweep()` on its way out, and the
report lists the finished runs and the failed ones with their error.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("neurogrow")

__all__ = ["ReportOnMultirunEnd", "report_unfinished_sweep"]

_started: list[tuple[ReportOnMultirunEnd, DictConfig]] = []  # sweeps begun in this process, not yet reported


class ReportOnMultirunEnd(Callback):
    """Hydra callback (`hydra.callbacks.report`): runs once in the launching process after every job."""

    def __init__(self, reference: str | None = None, by: str | None = None, enabled: bool = True) -> None:
        self.reference = reference
        self.by = [k for k in by.split(",") if k] if by else None
        self.enabled = enabled

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _started.append((self, config))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        _started[:] = [(cb, cfg) for cb, cfg in _started if cb is not self]
        self.report(config)

    def report(self, config: DictConfig) -> None:
        if not self.enabled:
            return
        from neurogrow.report import make_report

        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            _, written = make_report([sweep_dir], sweep_dir / "report", by=self.by, reference=self.reference)
        except (
            ValueError,
            FileNotFoundError,
        ) as err:  # a report must never turn a finished sweep into a failure
            log.warning("sweep report not written: %s", err)
            return
        print(written["text"])
        print(f"sweep report: {written['markdown']} (tables: groups.csv, runs.csv)")


def report_unfinished_sweep() -> None:
    """Write the report of a sweep that ended with a failed job (Hydra skipped `on_multirun_end`)."""
    while _started:
        callback, config = _started.pop()
        callback.report(config)
