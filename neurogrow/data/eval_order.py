"""The order in which evaluation sets are read: fixed, seeded and stratified by class.

Evaluation files list their images class by class, so with ``limit_val_batches`` / ``limit_test_batches``
the first batches would hold the first classes only. Reading the set round-robin over the classes (a
seeded permutation within each class) makes every prefix as class-balanced as it can be, and leaves a full
evaluation unchanged (the same images, in another order).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

__all__ = ["StratifiedOrder", "stratified_order"]


def stratified_order(labels: Sequence[int] | torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Indices that take one image of each class in turn (class 0, 1, ..., C-1, then again), seeded."""
    labels = torch.as_tensor(labels, dtype=torch.long).flatten()
    if labels.numel() == 0:
        return labels
    g = torch.Generator().manual_seed(seed)
    shuffled = torch.randperm(labels.numel(), generator=g)
    # a stable sort by (rank of the image within its class, class) interleaves the classes
    by_class = shuffled[torch.argsort(labels[shuffled], stable=True)]
    sorted_labels = labels[by_class]
    counts = torch.bincount(sorted_labels)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(labels.numel()) - starts[sorted_labels]
    key = rank * (int(sorted_labels.max()) + 1) + sorted_labels
    return by_class[torch.argsort(key, stable=True)]


class StratifiedOrder(Sampler[int]):
    """Sampler over a labelled evaluation set in :func:`stratified_order` (the same order every epoch)."""

    def __init__(self, labels: Sequence[int] | torch.Tensor, seed: int = 0) -> None:
        self.order = stratified_order(labels, seed).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)
