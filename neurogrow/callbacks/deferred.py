"""Deferred re-weighting (DRW) and deferred re-sampling (DRS) of Cao et al. 2019 (LDAM-DRW).

Train with the plain loss first, then switch to class-balanced weights at `start_epoch` (160 of 200
epochs on CIFAR in the paper). DRW is this callback; DRS is `neurogrow.data.samplers.DeferredResampler`,
whose `set_epoch` (called by Lightning every epoch) switches the sampling; `DeferredResampling` here
only validates and logs that switch.
"""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from neurogrow.data.samplers import DeferredResampler
from neurogrow.errors import UserError
from neurogrow.losses.base import LongTailLoss
from neurogrow.losses.weights import WeightScheme, class_weights


def _criterion(pl_module: pl.LightningModule) -> LongTailLoss:
    criterion = getattr(pl_module, "criterion", None)
    if not isinstance(criterion, LongTailLoss):
        raise UserError(
            "deferred re-weighting needs `pl_module.criterion` to be a neurogrow.losses.LongTailLoss "
            f"(got {type(criterion).__name__}); pick a loss from conf/loss/"
        )
    return criterion


def _warn_if_never(start_epoch: int, trainer: pl.Trainer, what: str) -> None:
    if trainer.max_epochs is not None and 0 <= trainer.max_epochs <= start_epoch:
        rank_zero_warn(
            f"{what} never activates: start_epoch={start_epoch} >= trainer.max_epochs={trainer.max_epochs}; "
            "lower start_epoch (the paper uses 160 of 200 epochs)"
        )


class DeferredReweighting(Callback):
    """DRW: unweighted loss before `start_epoch`, class-balanced weights from it on.

    The weights default to LDAM-DRW's effective-number weights with β = 0.9999 (Cui et al. 2019);
    ``scheme: inverse_frequency`` gives 1/n_c. Weights are set at every epoch start (not once), so a
    run resumed from a checkpoint is in the right phase.
    """

    def __init__(
        self, start_epoch: int = 160, scheme: WeightScheme = "effective_number", beta: float = 0.9999
    ):
        super().__init__()
        if start_epoch < 0:
            raise UserError(f"start_epoch must be >= 0, got {start_epoch}")
        self.start_epoch, self.scheme, self.beta = start_epoch, scheme, beta
        class_weights([1, 2], scheme=scheme, beta=beta)  # validate the options now, not at epoch 160

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _criterion(pl_module)
        _warn_if_never(self.start_epoch, trainer, "DRW")

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        criterion = _criterion(pl_module)
        active = trainer.current_epoch >= self.start_epoch
        weights = (
            class_weights(criterion.class_counts.cpu(), scheme=self.scheme, beta=self.beta)
            if active
            else None
        )
        criterion.set_class_weights(weights)
        if trainer.current_epoch == self.start_epoch:
            rank_zero_info(f"DRW: {self.scheme} class weights in the loss from epoch {self.start_epoch} on")
        pl_module.log("drw/active", float(active), on_step=False, on_epoch=True)


class DeferredResampling(Callback):
    """DRS companion: checks the train dataloader uses a `DeferredResampler` and logs when it is active."""

    def _sampler(self, trainer: pl.Trainer) -> DeferredResampler:
        loader = trainer.train_dataloader
        sampler = getattr(loader, "sampler", None)
        if not isinstance(sampler, DeferredResampler):
            raise UserError(
                "DRS needs the train dataloader to use neurogrow.data.samplers.DeferredResampler "
                f"(got {type(sampler).__name__}); `reweighting=drs` selects it (sampler=deferred): "
                "drop the other sampler= choice"
            )
        return sampler

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sampler = self._sampler(trainer)
        if trainer.current_epoch == 0:
            _warn_if_never(sampler.start_epoch, trainer, "DRS")
        if trainer.current_epoch == sampler.start_epoch:
            rank_zero_info(f"DRS: re-sampling with q={sampler.q} from epoch {sampler.start_epoch} on")
        pl_module.log("drs/active", float(sampler.active), on_step=False, on_epoch=True)
