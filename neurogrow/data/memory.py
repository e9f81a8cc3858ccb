"""A dataset of uint8 images held in one tensor, fetched a whole batch at a time.

With ``__getitems__`` the DataLoader asks for all indices of a batch at once, so a batch costs one
``index_select`` instead of ``batch_size`` Python calls plus a collate.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

__all__ = ["TensorImageDataset", "collate_batch"]


class TensorImageDataset(Dataset):
    """``images``: uint8 ``(N, H, W, C)``; ``labels``: int64 ``(N,)``. Items are ``(image, label)``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != len(labels):
            raise ValueError(
                f"expected uint8 images (N, H, W, C) and N labels, got {images.dtype} {tuple(images.shape)} "
                f"and {len(labels)} labels."
            )
        self.images = images
        self.labels = torch.as_tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.images.index_select(0, idx), self.labels.index_select(0, idx)


def collate_batch(batch):
    """Collate for :class:`TensorImageDataset`: ``__getitems__`` already returns the stacked batch."""
    if isinstance(batch, tuple):
        return batch
    return torch.utils.data.default_collate(batch)
