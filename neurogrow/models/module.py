"""The LightningModule: any timm backbone, a pluggable loss, long-tailed metrics.

Method-specific behaviour (neuron surgery, feature weakening, re-weighting schedules, logit
adjustment) lives in callbacks and loss modules; `training_step` stays the same for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from timm.optim import param_groups_weight_decay
from torch import nn
from torch.optim import Optimizer

from neurogrow.errors import UserError
from neurogrow.losses import CrossEntropy, LongTailLoss
from neurogrow.metrics import LongTailAccuracy
from neurogrow.models.backbone import create_backbone
from neurogrow.models.heads import use_normed_head
from neurogrow.models.schedules import per_step_scheduler

__all__ = ["LongTailClassifier"]

LossFactory = Callable[..., LongTailLoss]
OptimizerFactory = Callable[..., Optimizer]

# Per-class scalars are logged only up to this many classes (dashboards drown beyond it).
_MAX_LOGGED_CLASSES = 100
_PROG_BAR = ("acc", "acc_many", "acc_medium", "acc_few")


class LongTailClassifier(L.LightningModule):
    """Image classifier over a timm backbone, evaluated with Many/Medium/Few accuracy.

    Args:
        backbone: timm model name (e.g. ``resnet32_cifar``, ``resnet50``, ``vit_small_patch16_224``).
        num_classes: number of classes (the train entry takes it from the datamodule).
        class_counts: training images per class (index = label), from the datamodule.
        pretrained: load timm's pretrained weights (needs the internet or a local timm cache).
        small_input: adapt the stem / patch size to 32x32 inputs (see `create_backbone`).
        backbone_kwargs: extra arguments for `timm.create_model` (e.g. ``drop_path_rate``).
        loss: factory called as ``loss(class_counts=...)``; default plain cross-entropy. A loss with
            ``normed_head`` (LDAM) gets the cosine classifier `NormedLinear` in place of the linear one.
        optimizer: factory called with parameter groups (a Hydra partial of an optimizer class).
        scheduler: factory called as ``scheduler(max_epochs=...)`` returning an epoch -> factor schedule.
        no_weight_decay_on_norm_and_bias: exclude 1-D parameters (norms, biases) from weight decay.
        channels_last: keep conv weights and inputs in NHWC memory layout (faster convolutions under bf16/fp16
            on GPUs; measured for CPUs in ``benchmarks/results/training_speed.txt``). Numerics are unchanged.
        shot_groups: Many/Medium/Few thresholds, keyword arguments of `LongTailAccuracy`
            (``many_threshold``, ``few_threshold``, ``many_inclusive``; Hydra group ``metrics``).
    """

    def __init__(
        self,
        backbone: str,
        num_classes: int,
        class_counts: Sequence[int],
        pretrained: bool = False,
        small_input: bool = False,
        backbone_kwargs: dict[str, Any] | None = None,
        loss: LossFactory | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: Callable[..., Callable[[float], float]] | None = None,
        no_weight_decay_on_norm_and_bias: bool = True,
        channels_last: bool = False,
        shot_groups: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        class_counts = [int(c) for c in class_counts]
        if len(class_counts) != num_classes:
            raise UserError(f"class_counts has {len(class_counts)} entries but num_classes={num_classes}")
        # In the checkpoint, not in the loggers: the train entry logs the whole config, nested by group.
        self.save_hyperparameters(ignore=["loss", "optimizer", "scheduler"], logger=False)
        self.num_classes = num_classes
        self.class_counts = class_counts
        self.model: nn.Module = create_backbone(
            backbone, num_classes, pretrained=pretrained, small_input=small_input, **(backbone_kwargs or {})
        )
        self.criterion: LongTailLoss = (loss or CrossEntropy)(class_counts=class_counts)
        if self.criterion.normed_head:  # e.g. LDAM: its scale s is meant for cosine logits
            use_normed_head(self.model)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.shot_groups = dict(shot_groups or {})
        self.train_metrics = LongTailAccuracy(class_counts, **self.shot_groups)
        self.val_metrics = LongTailAccuracy(class_counts, **self.shot_groups)
        self.test_metrics = LongTailAccuracy(class_counts, **self.shot_groups)
        self.test_results: dict[str, Any] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:  # a no-op unless channels_last: images in the memory layout of the conv weights
            x = x.contiguous(memory_format=self.memory_format)
        return self.model(x)

    # --- training -------------------------------------------------------------------------------
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.criterion(logits, y)
        self.train_metrics.update(logits.detach(), y)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def on_train_epoch_end(self) -> None:
        results = self.train_metrics.compute()
        self._log_results("train", results, per_class_scalars=True)
        self.train_metrics.reset()

    # --- evaluation -----------------------------------------------------------------------------
    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.test_metrics, "test")

    def _eval_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], metrics: LongTailAccuracy, stage: str
    ) -> None:
        x, y = batch
        logits = self(x)
        metrics.update(logits, y)
        self.log(f"{stage}/loss", self.criterion(logits, y), on_epoch=True, batch_size=len(y))

    def on_validation_epoch_end(self) -> None:
        self._log_results("val", self.val_metrics.compute())
        self.val_metrics.reset()

    def on_test_epoch_end(self) -> None:
        results = self.test_metrics.compute()
        self._log_results("test", results)
        self.test_results = {f"test/{k}": v.tolist() for k, v in results.items()}
        self.test_results["test/acc_per_class"] = self.test_results.pop("test/per_class")
        self.test_metrics.reset()

    def _log_results(
        self, stage: str, results: dict[str, torch.Tensor], per_class_scalars: bool = False
    ) -> None:
        # The metric states are already reduced over ranks by torchmetrics: no sync_dist here.
        scalars = {f"{stage}/{k}": v for k, v in results.items() if v.ndim == 0}
        # The progress bar shows val/acc and Many/Medium/Few after each validation.
        shown = {k: v for k, v in scalars.items() if stage == "val" and k.rsplit("/", 1)[1] in _PROG_BAR}
        self.log_dict(shown, prog_bar=True)
        self.log_dict({k: v for k, v in scalars.items() if k not in shown}, prog_bar=False)
        if per_class_scalars and self.num_classes <= _MAX_LOGGED_CLASSES:
            self.log_dict({f"{stage}/acc_class_{c}": acc for c, acc in enumerate(results["per_class"])})

    # --- optimisation ---------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise UserError("LongTailClassifier needs an optimizer factory (Hydra group `optimizer`)")
        weight_decay = float(getattr(self.optimizer_factory, "keywords", {}).get("weight_decay", 0.0))
        if self.hparams.no_weight_decay_on_norm_and_bias:
            params = param_groups_weight_decay(self.model, weight_decay)
        else:
            params = [p for p in self.model.parameters() if p.requires_grad]
        try:
            optimizer = self.optimizer_factory(params)
        except (ValueError, TypeError) as err:  # torch's own checks: "Invalid momentum value: -1.0"
            name = getattr(getattr(self.optimizer_factory, "func", None), "__name__", "the optimizer")
            raise UserError(f"{name} rejected its settings: {err}; fix the optimizer.* values") from err
        max_epochs = self.trainer.max_epochs
        if self.scheduler_factory is None or max_epochs == 0:  # 0: evaluation-only runs (e.g. tau-norm)
            return optimizer
        if max_epochs is None or max_epochs < 1:
            raise UserError("the learning-rate schedules are defined in epochs: set trainer.max_epochs")
        steps_per_epoch = max(1, int(self.trainer.estimated_stepping_batches // max_epochs))
        schedule = self.scheduler_factory(max_epochs=max_epochs)
        scheduler = per_step_scheduler(optimizer, schedule, steps_per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
