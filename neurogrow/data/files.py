"""Datasets read image by image from disk, with transforms in DataLoader workers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from neurogrow.data.base import LongTailDataModule, SamplerFactory
from neurogrow.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform
from neurogrow.errors import UserError, UserFileNotFoundError

__all__ = ["FileListDataset", "FileLongTailDataModule", "Split"]

Split = tuple[list[str], list[int]]  # (paths relative to the root, labels)


class FileListDataset(Dataset):
    """``(transform(RGB image), label)`` for a list of files under ``root``."""

    def __init__(
        self, root: str | Path, files: Sequence[str], labels: Sequence[int], transform: Callable | None = None
    ) -> None:
        if len(files) != len(labels):
            raise UserError(f"{len(files)} files but {len(labels)} labels.")
        self.root = Path(root)
        self.files = list(files)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path = self.root / self.files[index]
        try:
            with Image.open(path) as img:
                image = img.convert("RGB")
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read image {path}: {e}. Replace or remove the file.") from e
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


class FileLongTailDataModule(LongTailDataModule):
    """File-based datasets: subclasses return the splits from :meth:`_read_splits`.

    Args:
        root: folder the split files' relative paths start from.
        image_size: crop size for training and evaluation (224 in the literature).
        resize_size: evaluation resize of the shorter side (default ``image_size * 256 / 224``).
        color_jitter: brightness/contrast/saturation jitter of the training transform (0 disables it).
        num_workers: DataLoader workers (decoding JPEGs needs several).
    """

    def __init__(
        self,
        root: str | Path,
        image_size: int = 224,
        resize_size: int | None = None,
        color_jitter: float = 0.4,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        batch_size: int = 256,
        num_workers: int = 8,
        sampler: SamplerFactory | None = None,
        val_per_class: int = 0,
        eval_batch_size: int | None = None,
        drop_last: bool = False,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__(
            batch_size, num_workers, sampler, val_per_class, eval_batch_size, drop_last, pin_memory
        )
        self.root = Path(root).expanduser()
        self.train_transform = train_transform(image_size, color_jitter, mean, std)
        self.eval_transform = eval_transform(image_size, resize_size, mean, std)

    root_key = "root"  # the config key of `root`, named in error messages

    def _read_splits(self) -> tuple[Split, Split | None, Split]:
        """(train, validation or None, test) as (relative paths, labels); also sets ``class_names``."""
        raise NotImplementedError

    def _load(self) -> None:
        if not self.root.is_dir():
            raise UserFileNotFoundError(
                f"{type(self).__name__}: {self.root_key} {self.root} does not exist; set "
                f"data.{self.root_key} to the folder of the images."
            )
        (train_files, train_labels), val, (test_files, test_labels) = self._read_splits()
        labels = np.asarray(train_labels, dtype=np.int64)
        if val is None:
            keep, hold = self._split_val(labels)
            if hold is not None:
                val = ([train_files[i] for i in hold], labels[hold].tolist())
            train_files, labels = [train_files[i] for i in keep], labels[keep]
        self.train_labels = torch.from_numpy(labels)
        self.train_dataset = FileListDataset(self.root, train_files, labels, self.train_transform)
        if val is not None:
            self.val_dataset = FileListDataset(self.root, val[0], val[1], self.eval_transform)
        self.test_dataset = FileListDataset(self.root, test_files, test_labels, self.eval_transform)
        first = self.root / train_files[0] if train_files else None
        if first is None or not first.is_file():
            raise UserFileNotFoundError(
                f"{type(self).__name__}: the first training image {first} is missing; check that `root` "
                f"({self.root}) is the folder the split files' paths are relative to."
            )
