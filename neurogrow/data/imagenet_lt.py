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


def read_split_file(path: Path) -> Split:
    """Parse ``relative/path label`` lines (blank lines ignored); errors name the file and line."""
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
        files.append(parts[0])
        labels.append(int(parts[1]))
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
        train = read_split_file(self.split_dir / "ImageNet_LT_train.txt")
        test = read_split_file(self.split_dir / "ImageNet_LT_test.txt")
        num_classes = max(train[1]) + 1
        if min(train[1]) < 0 or set(train[1]) != set(range(num_classes)):
            raise UserError(f"labels in ImageNet_LT_train.txt must cover 0..{num_classes - 1} without gaps.")
        # Class names: the synset folder of each class's first training image (n01440764, ...).
        names: dict[int, str] = {}
        for file, label in zip(*train):
            names.setdefault(label, Path(file).parent.name or str(label))
        self.class_names = [names[c] for c in range(num_classes)]
        val = None
        if self.val_per_class > 0:
            val = self._first_per_class(read_split_file(self.split_dir / "ImageNet_LT_val.txt"), num_classes)
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
