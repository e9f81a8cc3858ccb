"""Print the report when a sweep ends, and write it into the sweep directory (`<sweep dir>/report/`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("neurogrow")

__all__ = ["ReportOnMultirunEnd"]


class ReportOnMultirunEnd(Callback):
    """Hydra callback (`hydra.callbacks.report`): runs once in the launching process after every job."""

    def __init__(self, reference: str | None = None, by: str | None = None, enabled: bool = True) -> None:
        self.reference = reference
        self.by = [k for k in by.split(",") if k] if by else None
        self.enabled = enabled

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
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
