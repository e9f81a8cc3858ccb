"""Post-hoc logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.hooks import RemovableHandle

from neurogrow.errors import UserError


class PosthocLogitAdjustment(Callback):
    """At evaluation only, predict with f_y(x) - τ·log π_y (π = training class prior).

    A forward hook on `pl_module.model` that is inactive while the model trains, so training (and the
    training loss) is unchanged and validation/test metrics are those of the adjusted classifier. The
    prior comes from `pl_module.class_counts` (the datamodule's training counts).
    """

    def __init__(self, tau: float = 1.0) -> None:
        super().__init__()
        self.tau = tau
        self._handle: RemovableHandle | None = None
        self._target: nn.Module | None = None
        self._log_prior: torch.Tensor | None = None

    def _hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        if module.training or self._log_prior is None:
            return output
        return output - self.tau * self._log_prior.to(device=output.device, dtype=output.dtype)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        counts = getattr(pl_module, "class_counts", None)
        if counts is None:
            raise UserError(
                "post-hoc logit adjustment needs `pl_module.class_counts` (training images per class)"
            )
        counts = torch.as_tensor(list(counts), dtype=torch.float)
        if bool((counts <= 0).any()):
            raise UserError(f"post-hoc logit adjustment needs positive class counts, got {counts.tolist()}")
        self._log_prior = torch.log(counts / counts.sum())
        self._attach(pl_module)

    def _attach(self, pl_module: pl.LightningModule) -> None:
        model = pl_module.model
        if model is not self._target:
            if self._handle is not None:
                self._handle.remove()
            self._target, self._handle = model, model.register_forward_hook(self._hook)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._attach(pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._attach(pl_module)
