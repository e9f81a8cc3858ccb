"""A CSV logger that keeps a run's metric history when the run is resumed into the same directory.

Lightning's `CSVLogger` deletes an existing `metrics.csv` as soon as it starts, so resuming a run (even one
that then fails) loses every epoch logged before. This one appends to it, and rewrites it (when new
columns appear) through a temporary file and a rename, so no kill can lose rows already written.
"""

from __future__ import annotations

import csv
import os
import tempfile

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

__all__ = ["AppendingCSVLogger"]


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        # Continue the existing file: its header gives the columns already in use.
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as handle:
                self.metrics_keys = next(csv.reader(handle), [])

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        with open(self.metrics_file_path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        fd, tmp = tempfile.mkstemp(dir=self.log_dir, prefix=".metrics.csv.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=fieldnames)
                writer.writeheader()
                writer.writerows(rows)
            os.chmod(tmp, os.stat(self.metrics_file_path).st_mode & 0o777)
            os.replace(tmp, self.metrics_file_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


class AppendingCSVLogger(CSVLogger):
    """`CSVLogger` whose `metrics.csv` survives a resume: new rows are appended after the earlier ones."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
