"""Per-sample transforms for file-based datasets (ImageNet-LT, iNaturalist-2018, image folders).

These run in DataLoader workers: decoding JPEGs dominates there anyway, and the random-resized crop must
see the full-resolution image. The recipe is the one of the decoupling / LDAM / RIDE code bases.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms import v2

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "eval_transform", "train_transform"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _to_normalised_tensor(mean: Sequence[float], std: Sequence[float]) -> list:
    return [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


def train_transform(
    image_size: int = 224,
    color_jitter: float = 0.4,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """RandomResizedCrop + horizontal flip + ColorJitter(b, c, s; no hue) + normalise."""
    jitter = [v2.ColorJitter(color_jitter, color_jitter, color_jitter, 0.0)] if color_jitter > 0 else []
    return v2.Compose(
        [
            v2.RandomResizedCrop(image_size, antialias=True),
            v2.RandomHorizontalFlip(),
            *jitter,
            *_to_normalised_tensor(mean, std),
        ]
    )


def eval_transform(
    image_size: int = 224,
    resize_size: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """Resize the shorter side to ``resize_size`` (default ``image_size * 256 / 224``), centre crop,
    normalise."""
    resize = resize_size or round(image_size * 256 / 224)
    return v2.Compose(
        [v2.Resize(resize, antialias=True), v2.CenterCrop(image_size), *_to_normalised_tensor(mean, std)]
    )
