"""iNaturalist 2018 (Van Horn et al. 2018): 437.5K training images of 8142 species, naturally long-tailed.

Annotations are COCO-style ``train2018.json`` / ``val2018.json`` (``images`` with ``id``/``file_name``,
``annotations`` with ``image_id``/``category_id``); ``file_name`` is relative to the image root. As in
the literature, the official val split is the test set.
"""

from __future__ import annotations

import json
from pathlib import Path

from neurogrow.data.files import FileLongTailDataModule, Split
from neurogrow.errors import UserError, UserFileNotFoundError

__all__ = ["INaturalist2018DataModule", "read_coco_split"]


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise UserFileNotFoundError(
            f"annotation file {path} not found. Put train2018.json and val2018.json (from "
            f"github.com/visipedia/inat_comp/tree/master/2018) into `ann_dir`."
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e}); download it again.") from e


def read_coco_split(path: Path) -> tuple[list[str], list[int], dict[int, str]]:
    """(file names, category ids, {category id: name}) of a COCO-style annotation file."""
    data = _read_json(path)
    try:
        files = {img["id"]: img["file_name"] for img in data["images"]}
        pairs = [(files[a["image_id"]], int(a["category_id"])) for a in data["annotations"]]
    except KeyError as e:
        raise UserError(f"{path}: missing COCO field or unknown image id {e}.") from e
    names = {int(c["id"]): str(c.get("name", c["id"])) for c in data.get("categories", [])}
    return [p[0] for p in pairs], [p[1] for p in pairs], names


class INaturalist2018DataModule(FileLongTailDataModule):
    """iNaturalist 2018; category ids map to labels 0..C-1 in sorted-id order (``category_ids[label]``).

    Args:
        root: image root (``file_name`` entries such as ``train_val2018/Plantae/7477/x.jpg`` are below it).
        ann_dir: folder with ``train2018.json`` and ``val2018.json`` (default: ``root``).
        val_per_class: ``k > 0`` carves ``k`` training images per class as a balanced validation split.
    """

    def __init__(self, root: str | Path, ann_dir: str | Path | None = None, **kwargs) -> None:
        super().__init__(root, **kwargs)
        self.ann_dir = Path(ann_dir).expanduser() if ann_dir else self.root
        self.category_ids: list[int] = []

    def _read_splits(self) -> tuple[Split, Split | None, Split]:
        train_files, train_cats, names = read_coco_split(self.ann_dir / "train2018.json")
        test_files, test_cats, _ = read_coco_split(self.ann_dir / "val2018.json")
        self.category_ids = sorted(set(train_cats))
        to_label = {c: i for i, c in enumerate(self.category_ids)}
        unknown = sorted(set(test_cats) - set(to_label))
        if unknown:
            raise UserError(f"val2018.json has categories absent from train2018.json: {unknown[:10]}.")
        self.class_names = [names.get(c, str(c)) for c in self.category_ids]
        train = (train_files, [to_label[c] for c in train_cats])
        test = (test_files, [to_label[c] for c in test_cats])
        return train, None, test

    def summary(self) -> dict:
        return {**super().summary(), "category_ids": list(self.category_ids)}
