"""ImageNet-LT, iNaturalist-2018 and image-folder datamodules on tiny trees in the real on-disk formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from neurogrow.data import ImageFolderLTDataModule, ImageNetLTDataModule, INaturalist2018DataModule
from neurogrow.data.profiles import long_tail_counts
from tests.conftest import make_trainer

SMALL = {"image_size": 16, "resize_size": 20, "batch_size": 4, "num_workers": 0}


def _image(path: Path, value: int = 100, size: tuple[int, int] = (24, 20)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 50, 200)).save(path)


def _check_batches(dm, train_shape=(4, 3, 16, 16)):
    x, y = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.float32 and tuple(x.shape) == train_shape and y.dtype == torch.long
    x, _ = next(iter(dm.test_dataloader()))
    assert tuple(x.shape[1:]) == (3, 16, 16)


# --- ImageNet-LT ------------------------------------------------------------------------------------------
@pytest.fixture
def imagenet_lt(tmp_path):
    """ImageNet root with train/ and val/ synset folders plus the three split files in a separate dir."""
    root, splits = tmp_path / "imagenet", tmp_path / "splits"
    synsets = ["n01440764", "n01443537", "n01484850"]
    lines = {"train": [], "val": [], "test": []}
    for label, (syn, n_train) in enumerate(zip(synsets, [6, 3, 1])):
        for k in range(n_train):
            _image(root / "train" / syn / f"{syn}_{k}.JPEG", 40 * k)
            lines["train"].append(f"train/{syn}/{syn}_{k}.JPEG {label}")
        for k in range(4):
            _image(root / "val" / f"ILSVRC2012_val_{label}{k:07d}.JPEG")
            lines["val" if k < 2 else "test"].append(f"val/ILSVRC2012_val_{label}{k:07d}.JPEG {label}")
    splits.mkdir()
    for split, rows in lines.items():
        (splits / f"ImageNet_LT_{split}.txt").write_text("\n".join(rows) + "\n")
    return root, splits


def test_imagenet_lt_reads_split_files(imagenet_lt):
    root, splits = imagenet_lt
    dm = ImageNetLTDataModule(root=root, split_dir=splits, **SMALL)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.num_classes == 3 and dm.class_names == ["n01440764", "n01443537", "n01484850"]
    assert dm.class_counts == [6, 3, 1] and dm.train_labels.tolist() == [0] * 6 + [1] * 3 + [2]
    assert len(dm.test_dataset) == 6 and dm.val_dataloader().dataset is dm.test_dataset  # paper protocol
    _check_batches(dm)


def test_imagenet_lt_validation_uses_the_val_split(imagenet_lt):
    root, splits = imagenet_lt
    dm = ImageNetLTDataModule(root=root, split_dir=splits, val_per_class=1, **SMALL)
    dm.setup("fit")
    assert dm.class_counts == [6, 3, 1]  # training data untouched
    assert dm.val_dataset.files == [f"val/ILSVRC2012_val_{c}0000000.JPEG" for c in range(3)]
    with pytest.raises(ValueError, match="use val_per_class <= 20"):
        ImageNetLTDataModule(root=root, split_dir=splits, val_per_class=3, **SMALL).setup("fit")


def test_imagenet_lt_errors_name_the_problem(imagenet_lt, tmp_path):
    root, splits = imagenet_lt
    with pytest.raises(FileNotFoundError, match=r"ImageNet_LT_train\.txt"):
        ImageNetLTDataModule(root=root, split_dir=tmp_path, **SMALL).setup("fit")
    (splits / "ImageNet_LT_test.txt").write_text("val/x.JPEG\n")
    with pytest.raises(ValueError, match=r"ImageNet_LT_test\.txt:1"):
        ImageNetLTDataModule(root=root, split_dir=splits, **SMALL).setup("fit")


def test_corrupt_image_error_names_the_file(imagenet_lt):
    root, splits = imagenet_lt
    (root / "train" / "n01484850" / "n01484850_0.JPEG").write_bytes(b"broken")
    dm = ImageNetLTDataModule(root=root, split_dir=splits, **SMALL)
    dm.setup("fit")
    with pytest.raises(ValueError, match=r"n01484850_0\.JPEG"):
        dm.train_dataset[9]


# --- iNaturalist 2018 -------------------------------------------------------------------------------------
def _coco(path: Path, root: Path, items: list[tuple[str, int]]) -> None:
    images, annotations = [], []
    for i, (name, cat) in enumerate(items):
        _image(root / name)
        images.append({"id": 1000 + i, "file_name": name, "width": 24, "height": 20})
        annotations.append({"id": i, "image_id": 1000 + i, "category_id": cat})
    categories = [{"id": c, "name": f"species_{c}"} for c in sorted({c for _, c in items})]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))


def test_inaturalist_maps_sparse_category_ids_to_sorted_labels(tmp_path):
    root = tmp_path / "inat"
    train = [
        (f"train_val2018/Plantae/{c}/{k}.jpg", c) for c, n in [(7477, 2), (12, 5), (300, 3)] for k in range(n)
    ]
    test = [(f"train_val2018/Plantae/{c}/v{k}.jpg", c) for c in (12, 300, 7477) for k in range(2)]
    root.mkdir()
    _coco(root / "train2018.json", root, train)
    _coco(root / "val2018.json", root, test)
    dm = INaturalist2018DataModule(root=root, val_per_class=1, **SMALL)
    dm.setup("fit")
    assert dm.category_ids == [12, 300, 7477] and dm.class_names == [
        "species_12",
        "species_300",
        "species_7477",
    ]
    assert dm.class_counts == [4, 2, 1]  # 5/3/2 minus one balanced validation image per class
    assert torch.bincount(dm.val_dataset.labels).tolist() == [1, 1, 1]
    assert sorted(dm.test_dataset.labels.tolist()) == [0, 0, 1, 1, 2, 2]
    assert dm.summary()["category_ids"] == [12, 300, 7477]
    _check_batches(dm)


def test_inaturalist_missing_annotations_say_where(tmp_path):
    (tmp_path / "inat").mkdir()
    with pytest.raises(FileNotFoundError, match=r"train2018\.json"):
        INaturalist2018DataModule(root=tmp_path / "inat", **SMALL).setup("fit")


# --- image folder -----------------------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path):
    # natural counts: 'bee' 8, 'cat' 12, 'dog' 5 (labels: bee=0, cat=1, dog=2)
    for name, n in {"cat": 12, "bee": 8, "dog": 5}.items():
        for k in range(n):
            _image(tmp_path / "train" / name / f"{k}.png", 10 * k)
        for k in range(2):
            _image(tmp_path / "test" / name / f"{k}.jpg")
    return tmp_path


def test_image_folder_natural_counts_with_test_dir(folder):
    dm = ImageFolderLTDataModule(train_dir=folder / "train", test_dir=folder / "test", **SMALL)
    dm.setup("fit")
    assert dm.class_names == ["bee", "cat", "dog"] and dm.class_counts == [8, 12, 5]
    assert torch.bincount(dm.test_dataset.labels).tolist() == [2, 2, 2]
    _check_batches(dm)


def test_image_folder_imposed_profile_follows_natural_ranking(folder):
    dm = ImageFolderLTDataModule(
        train_dir=folder / "train", test_per_class=2, imbalance_factor=10, imbalance_type="exp", **SMALL
    )
    dm.setup("fit")
    # after the 2/class test hold-out: bee 6, cat 10, dog 3 -> ranks cat(0) bee(1) dog(2), img_max = 10
    profile = long_tail_counts(10, 3, 10, "exp")  # [10, 3, 1]
    assert dm.class_counts == [min(6, profile[1]), min(10, profile[0]), min(3, profile[2])]
    assert torch.bincount(dm.test_dataset.labels).tolist() == [2, 2, 2]
    train, test = set(dm.train_dataset.files), set(dm.test_dataset.files)
    assert not train & test


def test_image_folder_needs_a_test_set_and_matching_classes(folder):
    with pytest.raises(ValueError, match="test_dir"):
        ImageFolderLTDataModule(train_dir=folder / "train", **SMALL)
    (folder / "test" / "emu").mkdir()
    _image(folder / "test" / "emu" / "0.jpg")
    with pytest.raises(ValueError, match="class folders differ"):
        ImageFolderLTDataModule(train_dir=folder / "train", test_dir=folder / "test", **SMALL).setup("fit")


@pytest.mark.slow
def test_file_datamodule_with_workers_and_lightning_trainer(folder):
    import lightning as L
    import timm

    import neurogrow.models  # noqa: F401  (registers the CIFAR ResNets with timm)

    dm = ImageFolderLTDataModule(
        train_dir=folder / "train", test_dir=folder / "test", **{**SMALL, "num_workers": 1}, val_per_class=1
    )

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = timm.create_model("resnet20_cifar", num_classes=3)
            self.steps = 0

        def training_step(self, batch, batch_idx):
            self.steps += 1
            return torch.nn.functional.cross_entropy(self.model(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    model = Tiny()
    trainer = make_trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(model, datamodule=dm)
    assert model.steps == 2 and dm.class_counts == [7, 11, 4]
