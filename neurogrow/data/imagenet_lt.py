"""ImageNet-LT (Liu et al. 2019, OLTR): 115.8K training images of 1000 classes, 1280 to 5 per class.

The split files ``ImageNet_LT_{train,val,test}.txt`` list ``relative/path.JPEG label`` per line, paths
relative to the ImageNet root (``train/n01440764/n01440764_190.JPEG 0``). The test split (50 per class)
is the one papers report; the val split (20 per class) is the balanced validation set.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from neurogrow.data.files import FileLongTailDataModule, Split
from neurogrow.errors import UserError, UserFileNotFoundError

__all__ = ["ImageNetLTDataModule", "read_split_file"]


def read_split_file(path: Path, num_classes: int | None = None) -> Split:
    """Parse ``relative/path label`` lines (blank lines ignored); errors name the file and line.

    Every line is checked: two fields, an integer label, and with `num_classes` a label in
    ``0..num_classes-1`` (without it, a label >= 0).
    """
    if not path.is_file():
        raise UserFileNotFoundError(
            f"split file {path} not found. Put ImageNet_LT_train.txt, ImageNet_LT_val.txt and "
            f"ImageNet_LT_test.txt (from the OLTR release, github.com/zhmiao/OpenLongTailRecognition-OLTR) "
            f"into `split_dir`."
        )
    files, labels = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise UserError(f"{path}:{lineno}: expected 'relative/path.JPEG label', got {line!r}.")
        label = int(parts[1])
        if label < 0 or (num_classes is not None and label >= num_classes):
            valid = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
            raise UserError(
                f"{path}:{lineno}: label {label} is outside {valid} (the classes of ImageNet_LT_train.txt)."
            )
        files.append(parts[0])
        labels.append(label)
    if not files:
        raise UserError(f"{path} lists no images.")
    return files, labels


class ImageNetLTDataModule(FileLongTailDataModule):
    """ImageNet-LT.

    Args:
        root: the ImageNet root the split files' paths are relative to (holds ``train/``, ``val/``).
        split_dir: folder with the three split files (default: ``root``).
        val_per_class: ``k > 0`` validates on the first ``k`` images per class of ``ImageNet_LT_val.txt``
            (20 per class there); 0 validates on the test split, as the papers do.
    """

    def __init__(self, root: str | Path, split_dir: str | Path | None = None, **kwargs) -> None:
        super().__init__(root, **kwargs)
        self.split_dir = Path(split_dir).expanduser() if split_dir else self.root

    def _read_splits(self) -> tuple[Split, Split | None, Split]:
        # every split is read and checked at set-up: a bad test line must not wait for the end of training
        train = read_split_file(self.split_dir / "ImageNet_LT_train.txt")
        num_classes = max(train[1]) + 1
        missing = sorted(set(range(num_classes)) - set(train[1]))
        if missing:
            raise UserError(
                f"labels in {self.split_dir / 'ImageNet_LT_train.txt'} must cover 0..{num_classes - 1} "
                f"without gaps; no image has label {', '.join(map(str, missing[:10]))}."
            )
        test = read_split_file(self.split_dir / "ImageNet_LT_test.txt", num_classes)
        val_file = self.split_dir / "ImageNet_LT_val.txt"
        val_split = read_split_file(val_file, num_classes) if val_file.is_file() else None
        # Class names: the synset folder of each class's first training image (n01440764, ...).
        names: dict[int, str] = {}
        for file, label in zip(*train):
            names.setdefault(label, Path(file).parent.name or str(label))
        self.class_names = [names[c] for c in range(num_classes)]
        val = None
        if self.val_per_class > 0:
            val = self._first_per_class(val_split or read_split_file(val_file, num_classes), num_classes)
        return train, val, test

    def _first_per_class(self, split: Split, num_classes: int) -> Split:
        by_class: dict[int, list[str]] = defaultdict(list)
        for file, label in zip(*split):
            by_class[label].append(file)
        short = [c for c in range(num_classes) if len(by_class[c]) < self.val_per_class]
        if short:
            raise UserError(
                f"val_per_class={self.val_per_class} but ImageNet_LT_val.txt has fewer images for classes "
                f"{short[:10]}; it has 20 per class, so use val_per_class <= 20."
            )
        files = [f for c in range(num_classes) for f in by_class[c][: self.val_per_class]]
        return files, np.repeat(np.arange(num_classes), self.val_per_class).tolist()
