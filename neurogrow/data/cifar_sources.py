"""Readers for the places CIFAR can come from, and the uint8 cache they are decoded into once.

Sources: torchvision's on-disk pickle format (``cifar-10-batches-py/``, ``cifar-100-python/``, also what
``download=True`` produces) and, for CIFAR-10, the offline JPEG copy (a ``.tar.gz`` read in place, or an
extracted ``train/<class>/NNNN.jpg`` tree). Each is turned into :class:`CifarArrays` with every split's
images grouped by class in the official per-class order, which is all the LT subsampling depends on.
"""

from __future__ import annotations

import os
import pickle
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg

__all__ = [
    "CIFAR10_CLASSES",
    "CifarArrays",
    "load_cache",
    "read_jpeg_tar",
    "read_jpeg_tree",
    "read_torchvision_format",
    "save_cache",
]

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CACHE_VERSION = 1
_IMAGE_RE = re.compile(r"(?:^|/)(train|test)/([^/]+)/(\d+)\.jpe?g$", re.IGNORECASE)
_DECODE_CHUNK = 4096


@dataclass
class CifarArrays:
    """Full (balanced) CIFAR splits: uint8 NHWC images, int64 labels, class names, and their origin."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    source: str


# --- torchvision's pickle format ----------------------------------------------------------------------
def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except Exception as e:  # corrupt/truncated file
        raise ValueError(f"cannot read CIFAR batch file {path}: {e}. Delete it and download it again.") from e


def _batches(paths: list[Path], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    data, labels = [], []
    for path in paths:
        entry = _unpickle(path)
        data.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(entry[label_key], dtype=np.int64))
    return np.concatenate(data).transpose(0, 2, 3, 1), np.concatenate(labels)


def read_torchvision_format(folder: Path, cifar100: bool) -> CifarArrays:
    """Read ``cifar-10-batches-py/`` or ``cifar-100-python/`` (the files torchvision downloads)."""
    folder = Path(folder)
    if cifar100:
        train_files, test_files, meta_file = ["train"], ["test"], "meta"
        label_key, names_key = "fine_labels", "fine_label_names"
    else:
        train_files = [f"data_batch_{i}" for i in range(1, 6)]
        test_files, meta_file = ["test_batch"], "batches.meta"
        label_key, names_key = "labels", "label_names"
    missing = [f for f in [*train_files, *test_files, meta_file] if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is incomplete: missing {missing}.")
    xtr, ytr = _batches([folder / f for f in train_files], label_key)
    xte, yte = _batches([folder / f for f in test_files], label_key)
    classes = list(_unpickle(folder / meta_file)[names_key])
    return _grouped(xtr, ytr, xte, yte, classes, source=f"torchvision:{folder.name}")


def _grouped(xtr, ytr, xte, yte, classes, source) -> CifarArrays:
    """Stable-sort each split by label: per-class order is kept, and the caches of all sources agree."""
    otr = np.argsort(ytr, kind="stable")
    ote = np.argsort(yte, kind="stable")
    return CifarArrays(
        torch.from_numpy(np.ascontiguousarray(xtr[otr])),
        torch.from_numpy(ytr[otr]),
        torch.from_numpy(np.ascontiguousarray(xte[ote])),
        torch.from_numpy(yte[ote]),
        [str(c) for c in classes],
        source,
    )


# --- the offline JPEG copy ------------------------------------------------------------------------------
def _decode_one(data: bytes, name: str) -> torch.Tensor:
    try:
        img = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except Exception as e:
        raise ValueError(
            f"cannot decode image {name}: {e}. The file is corrupt; replace it or the archive."
        ) from e
    if img.shape != (3, 32, 32):
        raise ValueError(f"image {name} has shape {tuple(img.shape)}, expected 3x32x32 as in CIFAR.")
    return img


def _decode_all(
    raw: dict[tuple[str, str, int], tuple[bytes, str]],
) -> dict[tuple[str, str, int], torch.Tensor]:
    """Batched libjpeg-turbo decoding (about 2x PIL); on failure, per file, to name the broken one."""
    keys = list(raw)
    out: dict[tuple[str, str, int], torch.Tensor] = {}
    for start in range(0, len(keys), _DECODE_CHUNK):
        chunk = keys[start : start + _DECODE_CHUNK]
        try:
            tensors = [torch.frombuffer(bytearray(raw[k][0]), dtype=torch.uint8) for k in chunk]
            imgs = decode_jpeg(tensors, mode=ImageReadMode.RGB)
            if any(img.shape != (3, 32, 32) for img in imgs):
                raise ValueError("unexpected shape")
        except Exception:
            imgs = [_decode_one(*raw[k]) for k in chunk]
        out.update(zip(chunk, imgs))
    return out


def _assemble(
    raw: dict[tuple[str, str, int], tuple[bytes, str]], where: str, classes: tuple[str, ...]
) -> CifarArrays:
    """Decode, then order the images by (class in official order, NNNN) for each split."""
    found = _decode_all(raw)
    names = {c for _, c, _ in found}
    if names != set(classes):
        raise ValueError(
            f"{where}: class folders {sorted(names)} do not match the CIFAR-10 classes {list(classes)}."
        )
    out = []
    for split in ("train", "test"):
        keys = sorted((k for k in found if k[0] == split), key=lambda k: (classes.index(k[1]), k[2]))
        if not keys:
            raise ValueError(f"{where}: no images under {split}/<class>/.")
        out.append(torch.stack([found[k] for k in keys]).permute(0, 2, 3, 1).contiguous())
        out.append(torch.tensor([classes.index(k[1]) for k in keys], dtype=torch.long))
    return CifarArrays(*out, classes=list(classes), source=f"jpeg:{Path(where).name}")


def read_jpeg_tar(path: Path, classes: tuple[str, ...] = CIFAR10_CLASSES) -> CifarArrays:
    """Decode every ``{train,test}/<class>/NNNN.jpg`` member of a tarball, in one streaming pass."""
    raw: dict[tuple[str, str, int], tuple[bytes, str]] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                m = _IMAGE_RE.search(member.name)
                if not (member.isfile() and m):
                    continue
                raw[(m.group(1), m.group(2), int(m.group(3)))] = (
                    tar.extractfile(member).read(),
                    f"{path}:{member.name}",
                )
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ValueError(f"cannot read the archive {path}: {e}. Replace it with an intact copy.") from e
    return _assemble(raw, str(path), classes)


def read_jpeg_tree(root: Path, classes: tuple[str, ...] = CIFAR10_CLASSES) -> CifarArrays:
    """Decode an extracted ``root/{train,test}/<class>/NNNN.jpg`` tree."""
    root = Path(root)
    raw: dict[tuple[str, str, int], tuple[bytes, str]] = {}
    for split in ("train", "test"):
        for file in sorted((root / split).glob("*/*")):
            m = _IMAGE_RE.search(file.relative_to(root).as_posix())
            if m:
                raw[(split, m.group(2), int(m.group(3)))] = (file.read_bytes(), str(file))
    return _assemble(raw, str(root), classes)


# --- the cache --------------------------------------------------------------------------------------------
def save_cache(path: Path, arrays: CifarArrays) -> None:
    """Write atomically (temp file + rename) so concurrent runs never read a half-written cache."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = {
        "version": CACHE_VERSION,
        "train_images": arrays.train_images.contiguous(),
        "train_labels": arrays.train_labels,
        "test_images": arrays.test_images.contiguous(),
        "test_labels": arrays.test_labels,
        "classes": list(arrays.classes),
        "source": arrays.source,
    }
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_cache(path: Path) -> CifarArrays | None:
    """The cached arrays, or None when the file is missing, stale or unreadable (it is then rebuilt)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        d = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    if not isinstance(d, dict) or d.get("version") != CACHE_VERSION:
        return None
    keys = ("train_images", "train_labels", "test_images", "test_labels")
    return CifarArrays(*(d[k] for k in keys), classes=list(d["classes"]), source=str(d["source"]))
