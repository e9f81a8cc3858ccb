"""A CSV logger that keeps a run's metric history when the run is resumed into the same directory.

Lightning's `CSVLogger` deletes an existing `metrics.csv` as soon as it starts, so resuming a run (even one
that then fails) loses every epoch logged before. This one appends to it, and rewrites it (when new
columns appear) through a temporary file and a rename, so no kill can lose rows already written.

A run killed mid-epoch resumes from the checkpoint of the last finished epoch and trains the rest again,
logging those steps a second time: the first step the resumed process logs is the checkpoint's, so rows
at that step or later left by the killed attempt are dropped then, and every step appears once.
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
    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        self._replay_checked = False

    def _check_log_dir_exists(self) -> None:
        # Continue the existing file: its header gives the columns already in use.
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as handle:
                self.metrics_keys = next(csv.reader(handle), [])

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        if not self._replay_checked:
            self._replay_checked = True
            if step is not None and os.path.isfile(self.metrics_file_path):
                self._drop_rows_from(step)
        super().log_metrics(metrics_dict, step)

    def _read_rows(self) -> list[dict[str, str]]:
        with open(self.metrics_file_path, newline="") as handle:
            return list(csv.DictReader(handle))

    def _drop_rows_from(self, step: int) -> None:
        """Forget the rows a killed attempt logged at `step` or later: this process logs them again."""
        rows = self._read_rows()
        kept = [row for row in rows if not row.get("step") or int(float(row["step"])) < step]
        if len(kept) < len(rows):
            self._write_rows(self.metrics_keys, kept)

    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        self._write_rows(fieldnames, self._read_rows())

    def _write_rows(self, fieldnames: list[str], rows: list[dict[str, str]]) -> None:
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
