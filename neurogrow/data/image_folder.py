"""A user's own data: one sub-folder per class, with natural or imposed long-tailed class counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from neurogrow.data.files import FileLongTailDataModule, Split
from neurogrow.data.profiles import long_tail_counts, subsample_long_tail, validate_imbalance
from neurogrow.errors import UserError, UserFileNotFoundError

__all__ = ["ImageFolderLTDataModule"]


def _has_image(folder: Path) -> bool:
    return any(p.suffix.lower() in IMG_EXTENSIONS and p.is_file() for p in folder.rglob("*"))


def _index(folder: Path) -> tuple[list[str], list[str], list[int]]:
    """(class names, files relative to ``folder``, labels) via torchvision's ImageFolder scan."""
    if not folder.is_dir():
        raise UserFileNotFoundError(
            f"image folder {folder} does not exist; it needs one sub-folder per class."
        )
    empty = [d for d in sorted(folder.iterdir()) if d.is_dir() and not _has_image(d)]
    if empty:
        raise UserError(
            f"class folder {empty[0]} has no images ({IMG_EXTENSIONS}); add images or remove the folder"
            + (f" (also empty: {', '.join(d.name for d in empty[1:6])})." if len(empty) > 1 else ".")
        )
    try:
        ds = ImageFolder(str(folder))
    except (FileNotFoundError, RuntimeError) as e:
        raise UserFileNotFoundError(f"{folder}: {e} (expected one sub-folder of images per class).") from e
    files = [Path(p).relative_to(folder).as_posix() for p, _ in ds.samples]
    return list(ds.classes), files, [label for _, label in ds.samples]


class ImageFolderLTDataModule(FileLongTailDataModule):
    """``train_dir/<class>/*.jpg`` (labels = sorted class-folder names), optionally made long-tailed.

    Args:
        train_dir: training images, one sub-folder per class.
        test_dir: test images with the same class folders. Without it, ``test_per_class`` images per class
            are held out of ``train_dir`` first (a random, seeded, balanced draw).
        imbalance_factor: ``None`` keeps the natural counts. A number imposes an ``imbalance_type`` profile:
            classes are ranked by their natural count (largest first, ties by label) and the class of rank
            ``r`` keeps ``min(natural count, n_r)`` images, ``n_r`` from the profile with
            ``img_max`` (default: the largest natural count); images are drawn as in LDAM-DRW.
        seed: seed of the test hold-out and of the imposed subsampling.
    """

    root_key = "train_dir"

    def __init__(
        self,
        train_dir: str | Path,
        test_dir: str | Path | None = None,
        test_per_class: int = 0,
        imbalance_factor: float | None = None,
        imbalance_type: str = "exp",
        img_max: int | None = None,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(train_dir, **kwargs)
        if imbalance_factor is not None:
            validate_imbalance(imbalance_factor, imbalance_type)
        if test_dir is None and test_per_class <= 0:
            raise UserError("ImageFolderLTDataModule needs a test set: set test_dir, or test_per_class > 0.")
        self.test_dir = Path(test_dir).expanduser() if test_dir else None
        self.test_per_class = test_per_class
        self.imbalance_factor = imbalance_factor
        self.imbalance_type = imbalance_type
        self.img_max = img_max
        self.seed = seed

    def _read_splits(self) -> tuple[Split, Split | None, Split]:
        self.class_names, files, labels_list = _index(self.root)
        labels = np.asarray(labels_list, dtype=np.int64)
        num_classes = len(self.class_names)
        if self.test_dir is not None:
            test_classes, test_files, test_labels = _index(self.test_dir)
            if test_classes != self.class_names:
                raise UserError(
                    f"class folders differ between train_dir ({self.class_names}) and test_dir "
                    f"({test_classes}); both need the same class sub-folders."
                )
            test_files = [(self.test_dir.resolve() / f).as_posix() for f in test_files]  # root is train_dir
        else:
            rng = np.random.default_rng(self.seed)
            order = rng.permutation(len(labels))  # random balanced draw, reproducible by seed
            hold = np.zeros(len(labels), dtype=bool)
            for c in range(num_classes):
                pos = order[labels[order] == c]
                if len(pos) <= self.test_per_class:
                    raise UserError(
                        f"test_per_class={self.test_per_class} but class {self.class_names[c]!r} has only "
                        f"{len(pos)} images; lower it or give a test_dir."
                    )
                hold[pos[: self.test_per_class]] = True
            test_files = [files[i] for i in np.flatnonzero(hold)]
            test_labels = labels[hold].tolist()
            files = [files[i] for i in np.flatnonzero(~hold)]
            labels = labels[~hold]
        if self.imbalance_factor is not None:
            kept = subsample_long_tail(labels, self._imposed_counts(labels, num_classes), seed=self.seed)
            files, labels = [files[i] for i in kept], labels[kept]
        return (files, labels.tolist()), None, (test_files, test_labels)

    def _imposed_counts(self, labels: np.ndarray, num_classes: int) -> list[int]:
        natural = np.bincount(labels, minlength=num_classes)
        rank = np.argsort(-natural, kind="stable")  # rank -> label, largest class first
        img_max = self.img_max or int(natural.max())
        profile = long_tail_counts(img_max, num_classes, self.imbalance_factor, self.imbalance_type)
        counts = [0] * num_classes
        for r, label in enumerate(rank):
            counts[label] = min(int(natural[label]), profile[r])
        return counts
