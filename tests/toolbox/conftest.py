"""Tiny real components for toolbox tests: an imbalanced in-memory datamodule and a real classifier."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from neurogrow.models.module import LongTailClassifier

COUNTS = [24, 8, 4, 2]  # step-free long tail over 4 classes


class TinyLongTailData(L.LightningDataModule):
    """Random 8x8 images with long-tailed labels; follows the datamodule contract (sampler partial)."""

    def __init__(self, class_counts: Sequence[int] = COUNTS, batch_size: int = 8, sampler=None) -> None:
        super().__init__()
        self.class_counts = list(class_counts)
        self.num_classes = len(self.class_counts)
        self.class_names = [f"c{i}" for i in range(self.num_classes)]
        self.batch_size, self.sampler = batch_size, sampler
        g = torch.Generator().manual_seed(0)
        self.train_labels = torch.repeat_interleave(
            torch.arange(self.num_classes), torch.tensor(self.class_counts)
        )
        self.train_images = (
            torch.randn(len(self.train_labels), 3, 8, 8, generator=g)
            + self.train_labels.view(-1, 1, 1, 1).float()
        )
        self.test_labels = torch.arange(self.num_classes).repeat(4)
        self.test_images = torch.randn(len(self.test_labels), 3, 8, 8, generator=g)

    def train_dataloader(self) -> DataLoader:
        dataset = TensorDataset(self.train_images, self.train_labels)
        if self.sampler is None:
            return DataLoader(dataset, batch_size=self.batch_size, shuffle=True)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=self.sampler(labels=self.train_labels))

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.test_images, self.test_labels), batch_size=self.batch_size)

    test_dataloader = val_dataloader


def make_module(loss: Callable | None = None, class_counts: Sequence[int] = COUNTS) -> LongTailClassifier:
    torch.manual_seed(0)
    return LongTailClassifier(
        backbone="resnet20_cifar",
        num_classes=len(class_counts),
        class_counts=list(class_counts),
        loss=loss,
        optimizer=partial(torch.optim.SGD, lr=0.05, momentum=0.9),
    )


def make_trainer(callbacks: list, max_epochs: int = 2, **kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


@pytest.fixture
def tiny_data() -> TinyLongTailData:
    return TinyLongTailData()
