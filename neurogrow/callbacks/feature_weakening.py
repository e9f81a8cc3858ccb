"""Major Feature Weakening (MFW) from Procrustean training.

Ye, Zhan and Chao, "Procrustean Training for Imbalanced Deep Learning", ICCV 2021 (arXiv 2104.01769).
Networks fit the major classes first; MFW slows that down by mixing the features of major-class
samples with those of other samples in the mini-batch, so training progress is equalised across
classes. No official code exists; neurogrow's formulation, with every choice a config option:

- where: the pooled pre-logit feature (input of `model.get_classifier()`, i.e. `forward_head(x,
  pre_logits=True)` in timm), or the output of a named intermediate module (`layer: layer2`);
- partner: sample perm(n) of a random permutation of the batch (`detach_partner`: the partner gets no
  gradient from sample n's loss, so only n's own feature is pushed towards its label);
- strength: λ_n ~ Beta(α, α), folded to max(λ, 1-λ) and clipped to >= `lam_min` (>= 0.5: the sample's
  own feature dominates); feature_n ← λ_n f_n + (1 - λ_n) f_perm(n);
- who: sample n is weakened with probability p_{y_n} = p_max · ((N_y - N_min)/(N_max - N_min))^γ,
  growing with its class size and 0 for the smallest class;
- labels are never changed; only training forwards are touched (`start_epoch`/`end_epoch` bound it).

The module logs per-class training accuracy; this callback logs the fraction of weakened samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.hooks import RemovableHandle

from neurogrow.errors import UserError


def weakening_probabilities(
    class_counts: Sequence[int] | torch.Tensor, p_max: float, gamma: float
) -> torch.Tensor:
    """p_c = p_max · ((N_c - N_min) / (N_max - N_min))^γ; all zero when the classes are balanced."""
    counts = torch.as_tensor(class_counts, dtype=torch.float)
    span = counts.max() - counts.min()
    if span <= 0:
        return torch.zeros_like(counts)
    return p_max * ((counts - counts.min()) / span).pow(gamma)


class MajorFeatureWeakening(Callback):
    """MFW as a Lightning callback; see the module docstring for the formulation."""

    def __init__(
        self,
        alpha: float = 1.0,
        p_max: float = 1.0,
        gamma: float = 1.0,
        lam_min: float = 0.5,
        layer: str | None = None,
        detach_partner: bool = True,
        start_epoch: int = 0,
        end_epoch: int | None = None,
    ) -> None:
        super().__init__()
        if alpha <= 0 or not 0.0 <= p_max <= 1.0 or gamma < 0 or not 0.5 <= lam_min <= 1.0:
            raise UserError(
                "MFW needs alpha > 0, 0 <= p_max <= 1, gamma >= 0 and 0.5 <= lam_min <= 1; got "
                f"alpha={alpha}, p_max={p_max}, gamma={gamma}, lam_min={lam_min}"
            )
        self.alpha, self.p_max, self.gamma, self.lam_min = alpha, p_max, gamma, lam_min
        self.layer, self.detach_partner = layer, detach_partner
        self.start_epoch, self.end_epoch = start_epoch, end_epoch
        self.probabilities: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None
        self._handle: RemovableHandle | None = None
        self._target: nn.Module | None = None
        self._mixed = self._seen = 0

    # -- the mixing itself (usable without Lightning) --------------------------------------------------
    def weaken(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mix the features of (randomly chosen) major-class samples with a batch partner's features."""
        if self.probabilities is None:
            raise UserError("MFW: call set_class_counts(...) (or run it in a Trainer) before weaken()")
        n = features.shape[0]
        if labels.shape[0] != n:
            raise UserError(f"MFW: {labels.shape[0]} labels for a batch of {n} features")
        device = features.device
        p = self.probabilities.to(device)[labels]
        mix = torch.rand(n, device=device) < p
        self._seen += n
        if n < 2 or not bool(mix.any()):
            return features
        self._mixed += int(mix.sum())
        beta = torch.distributions.Beta(
            torch.tensor(self.alpha, device=device), torch.tensor(self.alpha, device=device)
        )
        lam = beta.sample((n,))
        lam = torch.maximum(lam, 1.0 - lam).clamp_min(self.lam_min)
        lam = torch.where(mix, lam, torch.ones_like(lam)).to(features.dtype)
        partner = features[torch.randperm(n, device=device)]
        if self.detach_partner:
            partner = partner.detach()
        lam = lam.view(n, *([1] * (features.ndim - 1)))
        return lam * features + (1.0 - lam) * partner

    def set_class_counts(self, class_counts: Sequence[int] | torch.Tensor) -> None:
        self.probabilities = weakening_probabilities(class_counts, self.p_max, self.gamma)

    # -- hooks ----------------------------------------------------------------------------------------
    def _active(self, epoch: int) -> bool:
        return epoch >= self.start_epoch and (self.end_epoch is None or epoch < self.end_epoch)

    def _take_labels(self, module: nn.Module, features: torch.Tensor) -> torch.Tensor | None:
        labels, self._labels = self._labels, None  # one training forward per batch is weakened
        if labels is None or not module.training or labels.shape[0] != features.shape[0]:
            return None  # evaluation, or a forward that is not this batch's (e.g. another callback's probe)
        return labels

    def _pre_hook(self, module: nn.Module, args: tuple) -> tuple | None:
        labels = self._take_labels(module, args[0])
        return None if labels is None else (self.weaken(args[0], labels), *args[1:])

    def _post_hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        labels = self._take_labels(module, output)
        return None if labels is None else self.weaken(output, labels)

    def _attach(self, pl_module: pl.LightningModule) -> None:
        model = pl_module.model
        if self.layer is None:
            target = model.get_classifier()
        else:
            try:
                target = model.get_submodule(self.layer)
            except AttributeError as e:
                names = [n for n, _ in model.named_children()]
                raise UserError(
                    f"MFW layer {self.layer!r} not found in the model; top-level modules: {names}"
                ) from e
        if target is self._target:
            return
        if self._handle is not None:
            self._handle.remove()
        self._target = target
        self._handle = (
            target.register_forward_pre_hook(self._pre_hook)
            if self.layer is None
            else target.register_forward_hook(self._post_hook)
        )

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        counts = getattr(pl_module, "class_counts", None)
        if counts is None:
            raise UserError("MFW needs `pl_module.class_counts` (training images per class)")
        self.set_class_counts(list(counts))
        self._attach(pl_module)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._attach(pl_module)  # neuron surgery may have replaced the hooked module
        self._mixed = self._seen = 0

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx
    ) -> None:
        self._labels = batch[1] if self._active(trainer.current_epoch) else None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx
    ):
        self._labels = None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._seen:
            pl_module.log("mfw/weakened_fraction", self._mixed / self._seen, on_step=False, on_epoch=True)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and self._handle is not None:
            self._handle.remove()
            self._handle = self._target = None
