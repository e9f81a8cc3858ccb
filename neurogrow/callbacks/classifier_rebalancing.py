"""Classifier re-balancing: decoupling (Kang et al. 2020), MaxNorm (Alshammari et al. 2022), cosine head.

Stage two of decoupled training starts from a stage-one checkpoint (`init_from=...`) and either
re-trains the classifier on frozen features with class-balanced sampling (cRT), rescales the trained
classifier's weights (τ-normalisation, no training), or re-trains it under a per-class weight-norm
bound (MaxNorm, projected gradient). All act on `pl_module.model.get_classifier()` (timm interface).
`NormedClassifier` swaps the linear head for LDAM's cosine classifier (`NormedLinear`).
"""

from __future__ import annotations

import logging

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.hooks import RemovableHandle

from neurogrow.errors import UserError

log = logging.getLogger(__name__)


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


class NormedLinear(nn.Linear):
    """Cosine classifier of LDAM-DRW (`NormedLinear`): logits = <x/||x||, w_c/||w_c||>, no bias.

    A subclass of `nn.Linear` (weight `[classes, features]`) so torch-pruning and neuron surgery treat it
    as a linear layer.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)

    def reset_parameters(self) -> None:
        """LDAM-DRW's initialisation, every class vector of norm 1 (their weight is our transpose).

        Reference: ``weight.uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)`` on ``[in, out]``.
        """
        with torch.no_grad():
            self.weight.uniform_(-1, 1).renorm_(2, 0, 1e-5).mul_(1e5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))


class NormedClassifier(Callback):
    """Replaces the linear classifier with `NormedLinear` before the optimiser is built (fit setup)."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        old = classifier_of(pl_module)
        if isinstance(old, NormedLinear):
            return
        if type(old) is not nn.Linear:
            raise UserError(f"NormedClassifier needs an nn.Linear classifier, got {type(old).__name__}")
        model = pl_module.model
        name = next(n for n, m in model.named_modules() if m is old)
        parent_name, _, attr = name.rpartition(".")
        new = NormedLinear(old.in_features, old.out_features).to(old.weight.device)
        setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)
        if model.get_classifier() is not new:
            raise UserError(f"could not replace the classifier {name!r} of {type(model).__name__}")


class StageTwo(Callback):
    """Guards stage-two options: refuses to start without a stage-one checkpoint (`init_from`).

    The decoupling configs pass `${init_from}`; the check runs when the callbacks are built, before any
    training, so a forgotten checkpoint is a one-line error instead of a classifier re-trained on random
    features.
    """

    def __init__(self, technique: str, init_from: str | None) -> None:
        super().__init__()
        if not init_from:
            raise UserError(
                f"{technique} is stage two of decoupled training: pass the stage-one checkpoint, e.g. "
                "init_from=outputs/<run>/checkpoints/last.ckpt"
            )
        self.technique, self.init_from = technique, init_from


def _set_backbone_eval(pl_module: pl.LightningModule, classifier: nn.Module) -> None:
    pl_module.model.eval()
    classifier.train()


class ClassifierRetraining(Callback):
    """cRT (Kang et al. 2020): re-train only the classifier on frozen features.

    At fit setup (after `init_from` loaded the stage-one weights, before the optimiser is built) every
    backbone parameter gets `requires_grad=False` and the classifier is re-initialised (`reinit`). The
    frozen backbone is kept in eval mode during training, so BatchNorm statistics stay those of stage
    one. Pair it with class-balanced sampling (`conf/decoupling/crt.yaml` does).
    """

    def __init__(self, reinit: bool = True) -> None:
        super().__init__()
        self.reinit = reinit

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

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx
    ) -> None:
        _set_backbone_eval(pl_module, classifier_of(pl_module))


class TauNormalization(Callback):
    """τ-normalisation (Kang et al. 2020): at evaluation the logits use w_c / ||w_c||^τ.

    Applied through a forward hook on the classifier while the model is not training, so the stored
    weights (and checkpoints) are untouched and it works with `trainer.max_epochs=0` (evaluate only).
    The hook stays after testing: the model object then predicts as the τ-normalised classifier.
    `keep_bias: false` drops the bias as Kang et al.'s classifier has none.
    """

    def __init__(self, tau: float = 1.0, keep_bias: bool = False) -> None:
        super().__init__()
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
            log.warning(
                "tau-normalisation only changes evaluation; this run also trains for %d epochs "
                "(set trainer.max_epochs=0 to evaluate a stage-one checkpoint)",
                trainer.max_epochs,
            )
        self._attach(pl_module)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._attach(pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._attach(pl_module)


class MaxNorm(Callback):
    """MaxNorm (Alshammari et al., "Long-Tailed Recognition via Weight Balancing", CVPR 2022).

    As the reference `MaxNorm_via_PGD(thresh=0.1)` (LTR-weight-balancing, `utils/regularizers.py`): the
    radius is relative, ``min_c ||w_c|| + thresh * (max_c ||w_c|| - min_c ||w_c||)`` of the classifier
    the fit starts from (stage one), fixed once, and every class weight vector above it is scaled back
    onto it at the end of each training epoch (projected gradient descent, once per epoch). Bias untouched.

    Args:
        thresh: the reference's `thresh` (relative) or, with ``relative=False``, an absolute radius.
        relative: compute the radius from the starting classifier as the reference (default).
        interval: ``"epoch"`` (reference) or ``"step"`` (project after every optimizer step).
    """

    INTERVALS = ("epoch", "step")

    def __init__(self, thresh: float = 0.1, relative: bool = True, interval: str = "epoch") -> None:
        super().__init__()
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
            log.info("MaxNorm: class weight norms bounded by %.6g", self.radius)

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
