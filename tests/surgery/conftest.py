"""Shared pieces of the surgery tests: one intra-op thread, and a tiny long-tailed datamodule."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

COUNTS = [24, 12, 6, 6]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread; intra-op threads thrash when the CPUs are shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class TinyLongTail(L.LightningDataModule):
    """48 random 32x32 images with long-tailed labels sorted by class, unshuffled (runs are reproducible;
    under DDP each rank sees a different class mix, so a different batch weight w_b)."""

    def __init__(self, batch_size: int = 16) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.class_counts = COUNTS
        self.labels = torch.cat([torch.full((c,), i) for i, c in enumerate(COUNTS)])
        self.images = torch.randn(len(self.labels), 3, 32, 32, generator=g)
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.images, self.labels), batch_size=self.batch_size, shuffle=False)
