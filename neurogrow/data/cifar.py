"""CIFAR-10-LT and CIFAR-100-LT, following LDAM-DRW's protocol exactly (Cao et al. 2019).

The full balanced splits are decoded once into a uint8 cache under ``data_dir``; the long-tailed subsampling
is applied on load, so changing the imbalance factor or the seed never re-decodes anything. Images stay
uint8 until the batch reaches the model's device, where :class:`BatchAugment` crops, flips and normalises
the whole batch at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from neurogrow.data.base import LongTailDataModule, SamplerFactory
from neurogrow.data.batch_augment import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD, BatchAugment
from neurogrow.data.cifar_sources import (
    CifarArrays,
    load_cache,
    read_jpeg_tar,
    read_jpeg_tree,
    read_torchvision_format,
    save_cache,
)
from neurogrow.data.memory import TensorImageDataset, collate_batch
from neurogrow.data.profiles import long_tail_counts, subsample_long_tail, validate_imbalance
from neurogrow.errors import UserFileNotFoundError

__all__ = ["CIFAR10LTDataModule", "CIFAR100LTDataModule", "CIFARLTDataModule"]

JPEG_TARBALL = "cifar10-jpeg-q75.tar.gz"


class CIFARLTDataModule(LongTailDataModule):
    """Long-tailed CIFAR with in-memory uint8 storage and batched on-device augmentation.

    Args:
        data_dir: where torchvision-format files are looked for / downloaded and the uint8 caches are written.
        shared_data_dir: folder holding the offline ``cifar10-jpeg/`` copy (CIFAR-10 only).
        imbalance_factor: largest / smallest class size (IF); 1 = balanced.
        imbalance_type: ``exp`` or ``step`` profile.
        seed: seed of the LT subsampling (LDAM-DRW uses 0).
        img_max: images of the largest class (default: all of them, 5000 / 500).
        download: let torchvision download the dataset into ``data_dir`` if no local source exists.
        padding, flip_prob: the batched training augmentation (random crop with zero padding, h-flip).
    """

    name: ClassVar[str]
    torchvision_folder: ClassVar[str]
    default_img_max: ClassVar[int]
    mean: ClassVar[Sequence[float]]
    std: ClassVar[Sequence[float]]
    cifar100: ClassVar[bool]

    def __init__(
        self,
        data_dir: str | Path = "data",
        shared_data_dir: str | Path | None = None,
        imbalance_factor: float = 100.0,
        imbalance_type: str = "exp",
        seed: int = 0,
        img_max: int | None = None,
        download: bool = False,
        padding: int = 4,
        flip_prob: float = 0.5,
        batch_size: int = 128,
        num_workers: int = 0,
        sampler: SamplerFactory | None = None,
        val_per_class: int = 0,
        eval_batch_size: int | None = None,
        drop_last: bool = False,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__(
            batch_size, num_workers, sampler, val_per_class, eval_batch_size, drop_last, pin_memory
        )
        validate_imbalance(imbalance_factor, imbalance_type)
        self.data_dir = Path(data_dir).expanduser()
        self.shared_data_dir = Path(shared_data_dir).expanduser() if shared_data_dir else None
        self.imbalance_factor = imbalance_factor
        self.imbalance_type = imbalance_type
        self.seed = seed
        self.img_max = img_max or self.default_img_max
        self.download = download
        self.augment = BatchAugment(self.mean, self.std, padding=padding, flip_prob=flip_prob)
        self.collate_fn = collate_batch
        self.data_source = ""

    # --- where the data comes from ------------------------------------------------------------------------
    def cache_path(self, source: str) -> Path:
        """One cache file per dataset and source (``original`` pixels vs the ``jpeg`` copy never mix)."""
        return self.data_dir / f"{self.name}-{source}.uint8.pt"

    def _jpeg_candidates(self) -> list[Path]:
        """Offline JPEG copies (a tarball, or a folder with an extracted ``train/<class>/`` tree)."""
        return []

    def _offline_hint(self) -> str:
        return ""

    def _searched(self) -> list[str]:
        return [
            str(self.cache_path("original")),
            str(self.data_dir / self.torchvision_folder),
            str(self.cache_path("jpeg")),
            *[str(p) for p in self._jpeg_candidates()],
        ]

    def _read_jpeg(self, path: Path) -> CifarArrays:
        return read_jpeg_tar(path) if path.is_file() else read_jpeg_tree(path)

    def load_arrays(self) -> CifarArrays:
        """The full balanced splits from the first available source, decoding into the cache if needed.

        Order: original pixels (cache, then torchvision's files in ``data_dir``), then the offline JPEG copy
        (cache, then the tarball or an extracted tree), then ``download=True``.
        """
        if (arrays := load_cache(self.cache_path("original"))) is not None:
            return arrays
        tv_dir = self.data_dir / self.torchvision_folder
        if tv_dir.is_dir():
            return self._cached(read_torchvision_format(tv_dir, cifar100=self.cifar100), "original")
        if (arrays := load_cache(self.cache_path("jpeg"))) is not None:
            return arrays
        jpeg = [p for p in self._jpeg_candidates() if p.is_file() or (p / "train").is_dir()]
        if jpeg:
            return self._cached(self._read_jpeg(jpeg[0]), "jpeg")
        if self.download:
            self._download()
            return self._cached(read_torchvision_format(tv_dir, cifar100=self.cifar100), "original")
        raise UserFileNotFoundError(
            f"{self.name}: no data found. Searched: {', '.join(self._searched())}. Put torchvision's "
            f"'{self.torchvision_folder}/' folder (the extracted python-version archive from "
            f"https://www.cs.toronto.edu/~kriz/cifar.html) into {self.data_dir}, or set download=true where "
            f"the internet is reachable, or point paths.data_dir at a folder that has it."
            + self._offline_hint()
        )

    def _cached(self, arrays: CifarArrays, source: str) -> CifarArrays:
        save_cache(self.cache_path(source), arrays)
        return arrays

    def _download(self) -> None:
        from torchvision import datasets

        cls = datasets.CIFAR100 if self.cifar100 else datasets.CIFAR10
        try:
            cls(root=str(self.data_dir), train=True, download=True)
        except Exception as e:
            raise UserFileNotFoundError(
                f"{self.name}: download into {self.data_dir} failed ({e}). Download the python-version "
                f"archive from https://www.cs.toronto.edu/~kriz/cifar.html by hand and extract it into "
                f"{self.data_dir}."
            ) from e

    # --- Lightning hooks ----------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Decode once into the cache (rank 0 only under DDP); later runs load it in well under a second."""
        self.load_arrays()

    def _load(self) -> None:
        arrays = self.load_arrays()
        self.data_source = arrays.source
        self.class_names = list(arrays.classes)
        counts = long_tail_counts(
            self.img_max, len(self.class_names), self.imbalance_factor, self.imbalance_type
        )
        kept = torch.from_numpy(subsample_long_tail(arrays.train_labels, counts, seed=self.seed))
        labels = arrays.train_labels[kept]
        train_pos, val_pos = self._split_val(labels)
        train_idx = kept[torch.from_numpy(train_pos)]
        self.train_labels = arrays.train_labels[train_idx]
        self.train_dataset = TensorImageDataset(arrays.train_images[train_idx], self.train_labels)
        if val_pos is not None:
            val_idx = kept[torch.from_numpy(val_pos)]
            self.val_dataset = TensorImageDataset(arrays.train_images[val_idx], arrays.train_labels[val_idx])
        self.test_dataset = TensorImageDataset(arrays.test_images.clone(), arrays.test_labels.clone())

    def transform_batch(self, batch: Any, train: bool) -> Any:
        images, labels = batch
        return self.augment.to(images.device)(images, train=train), labels

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "augment_generator": self.augment.generator_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.augment.load_generator_state(state_dict.get("augment_generator"))

    def summary(self) -> dict[str, Any]:
        return {
            **super().summary(),
            "dataset": self.name,
            "source": self.data_source,
            "imbalance_factor": self.imbalance_factor,
            "imbalance_type": self.imbalance_type,
            "seed": self.seed,
            "img_max": self.img_max,
        }


class CIFAR10LTDataModule(CIFARLTDataModule):
    """CIFAR-10-LT; also reads the offline JPEG copy in ``shared_data_dir/cifar10-jpeg``."""

    name = "cifar10"
    torchvision_folder = "cifar-10-batches-py"
    default_img_max = 5000
    mean = CIFAR10_MEAN
    std = CIFAR10_STD
    cifar100 = False

    def _jpeg_candidates(self) -> list[Path]:
        if self.shared_data_dir is None:
            return []
        folder = self.shared_data_dir / "cifar10-jpeg"
        return [folder / JPEG_TARBALL, folder]

    def _offline_hint(self) -> str:
        return (
            f" Offline, CIFAR-10 can also come from a JPEG copy: {JPEG_TARBALL} (or its extracted "
            f"train/<class>/NNNN.jpg tree) in <paths.shared_data_dir>/cifar10-jpeg/ "
            f"(shared_data_dir is now {self.shared_data_dir})."
        )


class CIFAR100LTDataModule(CIFARLTDataModule):
    """CIFAR-100-LT (fine labels)."""

    name = "cifar100"
    torchvision_folder = "cifar-100-python"
    default_img_max = 500
    mean = CIFAR100_MEAN
    std = CIFAR100_STD
    cifar100 = True
