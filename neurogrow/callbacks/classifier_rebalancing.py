"""Classifier re-balancing: decoupling (Kang et al. 2020), MaxNorm (Alshammari et al. 2022).

Stage two of decoupled training starts from a stage-one checkpoint (`init_from=...`) and either
re-trains the classifier on frozen features with class-balanced sampling (cRT), rescales the trained
classifier's weights (τ-normalisation, no training), or re-trains it under a per-class weight-norm
bound (MaxNorm, projected gradient). All act on `pl_module.model.get_classifier()` (timm interface).
Each is one callback (Hydra group `decoupling`, packaged at `callbacks.decoupling`) that refuses to be
built without the stage-one checkpoint.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn
from torch.utils.hooks import RemovableHandle

from neurogrow.data.samplers import ClassBalancedSampler
from neurogrow.errors import UserError


def classifier_of(pl_module: pl.LightningModule) -> nn.Module:
    """The classifier of the module's timm backbone (`pl_module.model.get_classifier()`)."""
    model = getattr(pl_module, "model", None)
    if model is None or not hasattr(model, "get_classifier"):
        raise UserError("expected `pl_module.model` to be a timm model with `get_classifier()`")
    return model.get_classifier()


def last_linear(pl_module: pl.LightningModule) -> nn.Linear:
    """The linear layer producing the logits (the classifier itself, or the last Linear of an MLP head)."""
    classifier = classifier_of(pl_module)
    linears = [m for m in classifier.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise UserError(
            f"classifier re-balancing needs an nn.Linear in the classifier ({type(classifier).__name__})"
        )
    return linears[-1]


class StageTwo(Callback):
    """Base of the stage-two callbacks: refuses to start without a stage-one checkpoint (`init_from`).

    The decoupling configs pass `${init_from}`; the check runs when the callback is built, before any
    training, so a forgotten checkpoint is a one-line error instead of a classifier re-trained on random
    features.
    """

    technique = "stage two"

    def __init__(self, init_from: str | None) -> None:
        super().__init__()
        if not init_from:
            raise UserError(
                f"{self.technique} is stage two of decoupled training: pass the stage-one checkpoint, e.g. "
                "init_from=outputs/<run>/checkpoints/last.ckpt"
            )
        self.init_from = init_from


def _set_backbone_eval(pl_module: pl.LightningModule, classifier: nn.Module) -> None:
    pl_module.model.eval()
    classifier.train()


class ClassifierRetraining(StageTwo):
    """cRT (Kang et al. 2020): re-train only the classifier on frozen features, class-balanced.

    At fit setup (after `init_from` loaded the stage-one weights, before the optimiser is built) every
    backbone parameter gets `requires_grad=False` and the classifier is re-initialised (`reinit`). The
    frozen backbone is kept in eval mode during training, so BatchNorm statistics stay those of stage
    one. The method samples class-balanced: `decoupling=crt` selects `sampler=class_balanced`, and with
    `balanced_sampling` training refuses to start on any other sampler.
    """

    technique = "cRT"

    def __init__(self, init_from: str | None, reinit: bool = True, balanced_sampling: bool = True) -> None:
        super().__init__(init_from)
        self.reinit, self.balanced_sampling = reinit, balanced_sampling

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        classifier = classifier_of(pl_module)
        pl_module.model.requires_grad_(False)
        classifier.requires_grad_(True)
        if self.reinit:
            for m in classifier.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sampler = getattr(trainer.train_dataloader, "sampler", None)
        if self.balanced_sampling and not isinstance(sampler, ClassBalancedSampler):
            raise UserError(
                f"{self.technique} re-trains the classifier with class-balanced sampling, but the train "
                f"dataloader uses {type(sampler).__name__}: keep sampler=class_balanced (which "
                "decoupling selects), or set callbacks.decoupling.balanced_sampling=false"
            )

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx
    ) -> None:
        _set_backbone_eval(pl_module, classifier_of(pl_module))


class TauNormalization(StageTwo):
    """τ-normalisation (Kang et al. 2020): at evaluation the logits use w_c / ||w_c||^τ.

    Applied through a forward hook on the classifier while the model is not training, so the stored
    weights (and checkpoints) are untouched and it works with `trainer.max_epochs=0` (evaluate only).
    The hook stays after testing: the model object then predicts as the τ-normalised classifier.
    `keep_bias: false` drops the bias as Kang et al.'s classifier has none.
    """

    technique = "tau-normalisation"

    def __init__(self, init_from: str | None, tau: float = 1.0, keep_bias: bool = False) -> None:
        super().__init__(init_from)
        if tau < 0:
            raise UserError(f"tau must be >= 0, got {tau}")
        self.tau, self.keep_bias = tau, keep_bias
        self._handle: RemovableHandle | None = None
        self._target: nn.Module | None = None

    def _hook(self, module: nn.Linear, args: tuple, output: torch.Tensor) -> torch.Tensor:
        if module.training:
            return output
        w = module.weight
        w = w / w.norm(dim=1, keepdim=True).clamp_min(1e-12).pow(self.tau)
        bias = module.bias if self.keep_bias else None
        return F.linear(args[0], w, bias)

    def _attach(self, pl_module: pl.LightningModule) -> None:
        linear = last_linear(pl_module)
        if linear is self._target:
            return
        if self._handle is not None:
            self._handle.remove()
        self._target, self._handle = linear, linear.register_forward_hook(self._hook)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.max_epochs:
            rank_zero_warn(
                f"tau-normalisation only changes evaluation; this run also trains for {trainer.max_epochs} "
                "epochs (set trainer.max_epochs=0 to evaluate a stage-one checkpoint)"
            )
        self._attach(pl_module)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._attach(pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._attach(pl_module)


class MaxNorm(ClassifierRetraining):
    """MaxNorm (Alshammari et al., "Long-Tailed Recognition via Weight Balancing", CVPR 2022).

    As the reference `MaxNorm_via_PGD(thresh=0.1)` (LTR-weight-balancing, `utils/regularizers.py`): the
    stage-one classifier is fine-tuned (not re-initialised) on frozen features with class-balanced
    sampling, as cRT, by projected gradient descent. The radius is relative,
    ``min_c ||w_c|| + thresh * (max_c ||w_c|| - min_c ||w_c||)`` of the classifier the fit starts from
    (stage one), fixed once, and every class weight vector above it is scaled back onto it at the end of
    each training epoch (once per epoch, as the reference). Bias untouched.

    Args:
        thresh: the reference's `thresh` (relative) or, with ``relative=False``, an absolute radius.
        relative: compute the radius from the starting classifier as the reference (default).
        interval: ``"epoch"`` (reference) or ``"step"`` (project after every optimizer step).
    """

    technique = "MaxNorm"
    INTERVALS = ("epoch", "step")

    def __init__(
        self,
        init_from: str | None,
        thresh: float = 0.1,
        relative: bool = True,
        interval: str = "epoch",
        reinit: bool = False,
        balanced_sampling: bool = True,
    ) -> None:
        super().__init__(init_from, reinit=reinit, balanced_sampling=balanced_sampling)
        if not thresh > 0:
            raise UserError(f"MaxNorm: thresh must be > 0, got {thresh}")
        if interval not in self.INTERVALS:
            raise UserError(f"MaxNorm: interval must be one of {self.INTERVALS}, got {interval!r}")
        self.thresh, self.relative, self.interval = float(thresh), relative, interval
        self.radius: float | None = None

    @staticmethod
    def radius_of(weight: torch.Tensor, thresh: float) -> float:
        """The reference's per-layer threshold: min + thresh * (max - min) of the row norms."""
        norms = weight.detach().flatten(1).norm(dim=1)
        return float(norms.min() + thresh * (norms.max() - norms.min()))

    @torch.no_grad()
    def _project(self, pl_module: pl.LightningModule) -> None:
        w = last_linear(pl_module).weight
        norms = w.flatten(1).norm(dim=1)
        over = norms > self.radius
        w[over] *= (self.radius / norms[over]).view(-1, *([1] * (w.ndim - 1)))

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.radius is None:  # a resumed run keeps the radius of its stage-one classifier
            w = last_linear(pl_module).weight
            self.radius = self.radius_of(w, self.thresh) if self.relative else self.thresh
            rank_zero_info(f"MaxNorm: class weight norms bounded by {self.radius:.6g}")

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx
    ) -> None:
        if self.interval == "step":
            self._project(pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.interval == "epoch":
            self._project(pl_module)

    def state_dict(self) -> dict[str, float | None]:
        return {"radius": self.radius}

    def load_state_dict(self, state_dict: dict[str, float | None]) -> None:
        self.radius = state_dict.get("radius")
