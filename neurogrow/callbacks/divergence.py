"""Stop a diverged run before it writes non-finite weights or reports metrics computed from them."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from neurogrow.errors import UserError

__all__ = ["NonFiniteTrainingError", "StopOnNonFinite"]


class NonFiniteTrainingError(UserError):
    """The loss or the weights became NaN/inf; the message says where and what to try."""


class StopOnNonFinite(L.Callback):
    """Raise on the first non-finite training loss, and before an epoch's checkpoint if a weight is.

    Lightning moves checkpoint callbacks last, so the weight check in `on_train_epoch_end` runs before
    `last.ckpt` is replaced: the last checkpoint on disk stays the last finite one.
    """

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not bool(torch.isfinite(loss.detach()).all()):
            where = f"epoch {trainer.current_epoch}, batch {batch_idx}"
            self._stop(trainer, f"the training loss is {loss.item()} at {where}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for name, param in pl_module.named_parameters():
            if not bool(torch.isfinite(param.detach()).all()):
                epoch = trainer.current_epoch
                self._stop(trainer, f"weight {name} is not finite at the end of epoch {epoch}")

    @staticmethod
    def _stop(trainer: L.Trainer, what: str) -> None:
        checkpoints = getattr(trainer.checkpoint_callback, "dirpath", None)
        kept = f"the last finite checkpoint, if any, is in {checkpoints}" if checkpoints else "no checkpoint"
        raise NonFiniteTrainingError(
            f"training diverged: {what}; stopped without saving or testing these weights ({kept}). "
            "Check optimizer.lr (finite, smaller) and the data, then run again"
        )
