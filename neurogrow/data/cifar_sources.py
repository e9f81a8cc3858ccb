"""Readers for the places CIFAR can come from, and the uint8 cache they are decoded into once.

Sources: torchvision's on-disk pickle format (``cifar-10-batches-py/``, ``cifar-100-python/``, also what
``download=True`` produces) and, for CIFAR-10, the offline JPEG copy (a ``.tar.gz`` read in place, or an
extracted ``train/<class>/NNNN.jpg`` tree). Each is turned into :class:`CifarArrays` with every split's
images grouped by class in the official per-class order, which is all the LT subsampling depends on.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import socket
import tarfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg

from neurogrow.errors import UserError, UserFileNotFoundError

log = logging.getLogger(__name__)

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
CACHE_VERSION = 2  # 2: a CRC-32 per array
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
        raise UserError(f"cannot read CIFAR batch file {path}: {e}. Delete it and download it again.") from e


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
        raise UserFileNotFoundError(f"{folder} is incomplete: missing {missing}.")
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
        raise UserError(
            f"cannot decode image {name}: {e}. The file is corrupt; replace it or the archive."
        ) from e
    if img.shape != (3, 32, 32):
        raise UserError(f"image {name} has shape {tuple(img.shape)}, expected 3x32x32 as in CIFAR.")
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
                raise UserError("unexpected shape")
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
        raise UserError(
            f"{where}: class folders {sorted(names)} do not match the CIFAR-10 classes {list(classes)}."
        )
    out = []
    for split in ("train", "test"):
        keys = sorted((k for k in found if k[0] == split), key=lambda k: (classes.index(k[1]), k[2]))
        if not keys:
            raise UserError(f"{where}: no images under {split}/<class>/.")
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
        raise UserError(f"cannot read the archive {path}: {e}. Replace it with an intact copy.") from e
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
_ARRAY_KEYS = ("train_images", "train_labels", "test_images", "test_labels")
_ORPHAN_AGE_S = 24 * 3600  # temp files of another host are only removed when this old


def _checksum(tensor: torch.Tensor) -> int:
    """CRC-32 of the tensor's bytes (about a second for CIFAR's 180 MB, no copy)."""
    return zlib.crc32(memoryview(tensor.contiguous().numpy()).cast("B"))


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_orphans(path: Path) -> list[Path]:
    """Remove temporary files of interrupted cache builds of `path` (their process is gone)."""
    removed = []
    host = socket.gethostname()
    for tmp in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        parts = tmp.name[len(Path(path).name) + 2 : -len(".tmp")].rsplit(".", 1)
        try:
            same_host = len(parts) == 2 and parts[0] == host
            orphan = (same_host and parts[1].isdigit() and not _pid_alive(int(parts[1]))) or (
                time.time() - tmp.stat().st_mtime > _ORPHAN_AGE_S
            )
            if orphan:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # removed meanwhile by its own process
            continue
    for tmp in removed:
        log.warning("removed %s, left by an interrupted cache build", tmp)
    return removed


def save_cache(path: Path, arrays: CifarArrays) -> None:
    """Write atomically (temp file + rename) with a CRC-32 per array, checked on every load."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_orphans(path)
    tmp = _tmp_name(path)
    tensors = {
        "train_images": arrays.train_images.contiguous(),
        "train_labels": arrays.train_labels,
        "test_images": arrays.test_images.contiguous(),
        "test_labels": arrays.test_labels,
    }
    payload = {
        "version": CACHE_VERSION,
        **tensors,
        "checksums": {k: _checksum(v) for k, v in tensors.items()},
        "classes": list(arrays.classes),
        "source": arrays.source,
    }
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_cache(path: Path) -> CifarArrays | None:
    """The cached arrays, or None when the file is missing, stale, unreadable or corrupt (then rebuilt).

    A file whose arrays do not match their stored CRC-32 (bit rot, a partial copy) is reported with a
    warning and ignored, so the caller decodes the source again and overwrites it.
    """
    path = Path(path)
    clean_orphans(path)
    if not path.is_file():
        return None
    try:
        d = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        log.warning("cache %s is unreadable (%s); rebuilding it", path, e)
        return None
    if not isinstance(d, dict) or d.get("version") != CACHE_VERSION:
        log.warning("cache %s was written by another neurogrow version; rebuilding it", path)
        return None
    sums = d.get("checksums") or {}
    bad = [k for k in _ARRAY_KEYS if sums.get(k) != _checksum(d[k])]
    if bad:
        log.warning("cache %s is corrupt (checksum mismatch in %s); rebuilding it", path, ", ".join(bad))
        return None
    return CifarArrays(*(d[k] for k in _ARRAY_KEYS), classes=list(d["classes"]), source=str(d["source"]))
