"""The datamodule contract every neurogrow dataset follows.

Models, losses, samplers and callbacks only need ``num_classes``, ``class_counts``, ``class_names`` and
``train_labels``; keeping those on one base class lets every long-tailed technique work with every dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from neurogrow.data.eval_order import StratifiedOrder
from neurogrow.data.profiles import balanced_holdout
from neurogrow.errors import UserError

__all__ = ["LongTailDataModule"]

SamplerFactory = Callable[..., Sampler]


class LongTailDataModule(L.LightningDataModule):
    """Base class: dataloaders, the optional balanced validation split and the class statistics.

    Subclasses implement :meth:`_load` (set ``train_dataset``, ``test_dataset``, ``train_labels``,
    ``class_names`` and optionally ``val_dataset``) and may override :meth:`transform_batch`, which runs in
    ``on_after_batch_transfer``, i.e. on the model's device.

    Args:
        batch_size: training batch size.
        num_workers: DataLoader worker processes (file-based datasets need them; in-memory ones do not).
        sampler: Hydra partial called as ``sampler(labels=self.train_labels)``; ``None`` = plain shuffling.
        val_per_class: 0 (default) validates on the test set, as the long-tailed papers do. ``k > 0`` holds
            out ``k`` images per class from the long-tailed training set (after subsampling) as a balanced
            validation set, so that model selection never sees the test set; ``class_counts`` then reports
            the images actually trained on.
        eval_batch_size: batch size for validation/test (default: ``batch_size``).
        drop_last: drop the last incomplete training batch.
        pin_memory: pin host memory (default: when CUDA is available).
    """

    def __init__(
        self,
        batch_size: int = 128,
        num_workers: int = 0,
        sampler: SamplerFactory | None = None,
        val_per_class: int = 0,
        eval_batch_size: int | None = None,
        drop_last: bool = False,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1 or num_workers < 0 or val_per_class < 0:
            raise UserError(
                f"need batch_size >= 1, num_workers >= 0 and val_per_class >= 0; got {batch_size}, "
                f"{num_workers} and {val_per_class}."
            )
        if eval_batch_size is not None and eval_batch_size < 1:
            raise UserError(f"eval_batch_size must be >= 1 (or null for batch_size), got {eval_batch_size}.")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size if eval_batch_size is not None else batch_size
        self.num_workers = num_workers
        self.sampler = sampler
        self.val_per_class = val_per_class
        self.drop_last = drop_last
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.collate_fn: Callable[[Any], Any] | None = None
        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None
        self.train_labels: torch.Tensor = torch.zeros(0, dtype=torch.long)
        self.class_names: list[str] = []
        self.class_counts: list[int] = []
        self._loaded = False
        # The training loader's own generator (shuffling, worker seeds), saved in checkpoints via
        # `state_dict` so that a resumed run sees the same batches as an uninterrupted one.
        self.generator = torch.Generator()
        self.generator.manual_seed(torch.initial_seed())

    # --- subclass interface ---------------------------------------------------------------------------
    def _load(self) -> None:
        raise NotImplementedError

    def transform_batch(self, batch: Any, train: bool) -> Any:
        """Per-batch transform on the model's device; identity for datasets transformed in workers."""
        return batch

    # --- Lightning hooks ------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self._loaded:
            return
        self._load()
        self.train_labels = torch.as_tensor(self.train_labels, dtype=torch.long)
        self.class_counts = torch.bincount(self.train_labels, minlength=self.num_classes).tolist()
        self._check_classes()
        self._loaded = True

    def state_dict(self) -> dict[str, Any]:
        """RNG state of the training data (Lightning stores it in every checkpoint)."""
        return {"train_generator": self.generator.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "train_generator" in state_dict:
            self.generator.set_state(state_dict["train_generator"])

    def _check_classes(self) -> None:
        """Long-tailed classification needs two classes or more, each with training images."""
        if self.num_classes < 2:
            raise UserError(
                f"{type(self).__name__}: the data has {self.num_classes} class(es) "
                f"({', '.join(self.class_names) or 'none'}); classification needs at least two."
            )
        empty = [self.class_names[c] for c, n in enumerate(self.class_counts) if n == 0]
        if empty:
            raise UserError(
                f"{type(self).__name__}: no training images left for class(es) {', '.join(empty[:10])} "
                f"(of {self.num_classes}); lower imbalance_factor or raise img_max so every class keeps one."
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = self.trainer
        return self.transform_batch(batch, train=bool(trainer is not None and trainer.training))

    def summary(self) -> dict[str, Any]:
        """What a run should record about its data (the train entry writes it next to the metrics)."""
        return {
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "class_counts": list(self.class_counts),
            "num_train": int(sum(self.class_counts)),
            "val_per_class": self.val_per_class,
        }

    # --- helpers for subclasses ------------------------------------------------------------------------
    def _split_val(self, labels: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """(train positions, val positions or None) according to ``val_per_class``."""
        labels = np.asarray(labels)
        if self.val_per_class == 0:
            return np.arange(len(labels)), None
        return balanced_holdout(labels, self.val_per_class, self.num_classes)

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(
                "call prepare_data() and setup() on the datamodule before asking for dataloaders."
            )
        if train:
            sampler = self.sampler(labels=self.train_labels) if self.sampler is not None else None
        else:  # a limited evaluation (limit_val_batches, ...) still sees every class
            sampler = StratifiedOrder(dataset.labels) if hasattr(dataset, "labels") else None
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            drop_last=train and self.drop_last,
            num_workers=self.num_workers,
            # Training workers start afresh every epoch, seeded from `generator`: persistent ones would carry
            # their RNG state across epochs, which no checkpoint can restore.
            persistent_workers=self.num_workers > 0 and not train,
            generator=self.generator if train else None,
            pin_memory=self.pin_memory,
            collate_fn=self.collate_fn,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, train=True)

    def val_dataloader(self) -> DataLoader:
        """The balanced held-out split if ``val_per_class > 0``, else the test set (the papers' protocol)."""
        return self._loader(
            self.val_dataset if self.val_dataset is not None else self.test_dataset, train=False
        )

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset, train=False)
