"""Progress that reads well in a terminal and in a SLURM log, and a per-epoch line in `train.log`.

In a terminal: Lightning's tqdm bar (with `val/acc` and Many/Medium/Few after each validation).
Elsewhere (SLURM, `| tee`, a CI log): plain lines every `every_n_batches` and one line per epoch, no
carriage returns or escape codes. `NEUROGROW_PROGRESS=bar|plain` forces either.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, ProgressBar, TQDMProgressBar
from lightning.pytorch.utilities import rank_zero_only

__all__ = ["EpochLog", "PlainProgressBar", "epoch_summary", "progress_bar"]

log = logging.getLogger("neurogrow")

# What the epoch line shows, in this order, when logged (`val/*` only with validation).
EPOCH_KEYS = (
    "train/loss",
    "val/loss",
    "val/acc",
    "val/acc_many",
    "val/acc_medium",
    "val/acc_few",
    "val/balanced_acc",
)


def epoch_summary(metrics: dict[str, Any]) -> str:
    """`train/loss=1.234 val/acc=45.67% ...` from a trainer's callback metrics (accuracies in %)."""
    parts = []
    for key in EPOCH_KEYS:
        value = metrics.get(key, metrics.get(f"{key}_epoch"))
        if value is None:
            continue
        value = float(value)
        if math.isnan(value):
            continue
        parts.append(f"{key}={100 * value:.2f}%" if "acc" in key else f"{key}={value:.4f}")
    return " ".join(parts)


class PlainProgressBar(ProgressBar):
    """Plain, flushed lines: `[epoch 3/150] batch 50/390 train/loss=1.2345 (12.3 batch/s)`."""

    def __init__(self, every_n_batches: int = 50) -> None:
        super().__init__()
        if every_n_batches < 1:
            raise ValueError(f"every_n_batches must be >= 1, got {every_n_batches}")
        self.every_n_batches = every_n_batches
        self._enabled = True
        self._epoch_start = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _write(self, text: str) -> None:
        if self._enabled:
            print(text, flush=True)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        total = self.total_train_batches
        done = batch_idx + 1
        if done % self.every_n_batches and done != total:
            return
        rate = done / max(time.perf_counter() - self._epoch_start, 1e-9)
        loss = self.get_metrics(trainer, pl_module).get("train/loss_step")
        loss_text = f" train/loss={float(loss):.4f}" if loss is not None else ""
        total_text = str(total) if total != float("inf") else "?"
        self._write(
            f"[epoch {trainer.current_epoch + 1}/{trainer.max_epochs}] batch {done}/{total_text}"
            f"{loss_text} ({rate:.1f} batch/s)"
        )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self._epoch_start
        summary = epoch_summary(dict(trainer.callback_metrics))
        self._write(
            f"[epoch {trainer.current_epoch + 1}/{trainer.max_epochs}] done in {seconds:.1f} s {summary}"
        )

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write("[test] running")


def progress_bar(refresh_rate: int = 10, every_n_batches: int = 50) -> ProgressBar:
    """tqdm in a terminal, plain lines otherwise (`NEUROGROW_PROGRESS=bar|plain` forces one)."""
    choice = os.environ.get("NEUROGROW_PROGRESS", "").lower()
    if choice not in ("", "bar", "plain"):
        raise ValueError(f"NEUROGROW_PROGRESS must be bar or plain, got {choice!r}")
    use_bar = choice == "bar" or (choice == "" and sys.stdout.isatty())
    return TQDMProgressBar(refresh_rate=refresh_rate) if use_bar else PlainProgressBar(every_n_batches)


class EpochLog(Callback):
    """One `train.log` line per epoch with the metrics of `epoch_summary` (rank zero only).

    Runs at the end of the training epoch, after validation, so `val/*` are those of this epoch.
    Surgery events are logged by the surgery callback through the same `neurogrow` logger.
    """

    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        summary = epoch_summary(dict(trainer.callback_metrics))
        log.info("epoch %d/%d: %s", trainer.current_epoch + 1, trainer.max_epochs, summary)
