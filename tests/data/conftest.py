"""Fixture builders for the data tests: real on-disk formats, generated small."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neurogrow.data import CIFAR10LTDataModule
from neurogrow.data.cifar_sources import CIFAR10_CLASSES

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = REPO / "data"
SHARED_DATA_DIR = REPO.parent / "shared" / "data"


def _ldam_reference(targets, img_num_per_cls, seed: int = 0) -> np.ndarray:
    """LDAM-DRW's ``IMBALANCECIFAR10.gen_imbalanced_data``, verbatim but for returning the kept indices."""
    np.random.seed(seed)
    targets_np = np.array(targets, dtype=np.int64)
    classes = np.unique(targets_np)
    kept = []
    for the_class, the_img_num in zip(classes, img_num_per_cls):
        idx = np.where(targets_np == the_class)[0]
        np.random.shuffle(idx)
        selec_idx = idx[:the_img_num]
        kept.append(selec_idx)
    return np.concatenate(kept)


def _write_cifar_pickles(
    folder: Path, train_labels: np.ndarray, test_labels: np.ndarray, cifar100: bool
) -> None:
    """torchvision's python-version layout. Pixel (0, 0) of image i encodes i (R = i % 256, G = i // 256)."""
    folder.mkdir(parents=True, exist_ok=True)

    def images(n: int) -> np.ndarray:
        data = np.zeros((n, 3, 32, 32), dtype=np.uint8)
        data[:, 0, 0, 0] = np.arange(n) % 256
        data[:, 1, 0, 0] = np.arange(n) // 256
        return data.reshape(n, 3072)

    def dump(name: str, obj: dict) -> None:
        with open(folder / name, "wb") as f:
            pickle.dump(obj, f)

    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    names = [f"class_{i:03d}" for i in range(num_classes)]
    if cifar100:
        dump("train", {"data": images(len(train_labels)), "fine_labels": train_labels.tolist()})
        dump("test", {"data": images(len(test_labels)), "fine_labels": test_labels.tolist()})
        dump("meta", {"fine_label_names": names, "coarse_label_names": names[:20]})
    else:
        parts = np.array_split(np.arange(len(train_labels)), 5)
        full = images(len(train_labels))
        for i, part in enumerate(parts, start=1):
            dump(f"data_batch_{i}", {"data": full[part], "labels": train_labels[part].tolist()})
        dump("test_batch", {"data": images(len(test_labels)), "labels": test_labels.tolist()})
        dump("batches.meta", {"label_names": names})


def _jpeg_bytes(value: int, size: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (value, 255 - value, 128)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _cifar10_jpeg_files(per_class_train: int = 3, per_class_test: int = 1) -> dict[str, bytes]:
    """{member name: JPEG bytes} in the offline copy's layout; image k of a class has red = 60 * k."""
    files = {}
    for cls in CIFAR10_CLASSES:
        for k in range(per_class_train):
            files[f"train/{cls}/{k:04d}.jpg"] = _jpeg_bytes(60 * k)
        for k in range(per_class_test):
            files[f"test/{cls}/{k:04d}.jpg"] = _jpeg_bytes(60 * k)
    return files


def _write_tar(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="session")
def cifar10_offline() -> dict[str, Path]:
    """The real offline CIFAR-10 copy, decoded once into ``<repo>/data`` (shared with the smoke test)."""
    if not (SHARED_DATA_DIR / "cifar10-jpeg" / "cifar10-jpeg-q75.tar.gz").is_file():
        pytest.skip(f"offline CIFAR-10 copy not found under {SHARED_DATA_DIR}")
    CIFAR10LTDataModule(data_dir=DATA_DIR, shared_data_dir=SHARED_DATA_DIR).prepare_data()
    return {"data_dir": DATA_DIR, "shared_data_dir": SHARED_DATA_DIR}


# Helpers as fixtures (test modules cannot import a conftest by name safely when several exist).
@pytest.fixture(scope="session")
def ldam_reference():
    return _ldam_reference


@pytest.fixture(scope="session")
def write_cifar_pickles():
    return _write_cifar_pickles


@pytest.fixture(scope="session")
def jpeg_bytes():
    return _jpeg_bytes


@pytest.fixture(scope="session")
def cifar10_jpeg_files():
    return _cifar10_jpeg_files


@pytest.fixture(scope="session")
def write_tar():
    return _write_tar
