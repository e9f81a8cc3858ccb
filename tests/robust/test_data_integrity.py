"""The decoded CIFAR cache is checksummed (bit rot is rebuilt, with a warning) and interrupted builds leave
no temporary files; ImageNet-LT split files are checked line by line at set-up."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from neurogrow.data.cifar_sources import load_cache
from tests.data.conftest import _write_cifar_pickles
from tests.robust.helpers import TINY, train

TINY_CIFAR = ("data.img_max=20", "data.imbalance_factor=2", "data.eval_batch_size=50")


@pytest.mark.slow
def test_corrupt_cache_is_detected_and_rebuilt(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    labels = np.repeat(np.arange(10), 20)
    _write_cifar_pickles(
        data_dir / "cifar-10-batches-py", labels, np.repeat(np.arange(10), 5), cifar100=False
    )
    first = train(*TINY, *TINY_CIFAR, f"paths.data_dir={data_dir}", f"hydra.run.dir={tmp_path / 'a'}")
    assert first.returncode == 0, first.stderr[-3000:]
    cache = data_dir / "cifar10-original.uint8.pt"
    good = load_cache(cache)
    assert good is not None
    expected = good.train_images.clone()

    raw = bytearray(cache.read_bytes())  # flip bytes inside the training images of the real cache file
    middle = len(raw) // 2
    raw[middle : middle + 16] = bytes(255 - b for b in raw[middle : middle + 16])
    cache.write_bytes(bytes(raw))
    assert load_cache(cache) is None  # detected

    orphan = cache.with_name(f".{cache.name}.{socket.gethostname()}.999999999.tmp")  # a killed build's
    orphan.write_bytes(b"partial")
    second = train(*TINY, *TINY_CIFAR, f"paths.data_dir={data_dir}", f"hydra.run.dir={tmp_path / 'b'}")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "corrupt" in second.stdout + second.stderr  # the warning
    rebuilt = load_cache(cache)
    assert rebuilt is not None and (rebuilt.train_images == expected).all()
    assert not orphan.exists()
    assert not list(data_dir.glob(".*.tmp"))
    counts = [json.loads((tmp_path / r / "class_counts.json").read_text()) for r in "ab"]
    assert counts[0] == counts[1]


# --- ImageNet-LT split files ------------------------------------------------------------------------------
def _imagenet_lt(tmp_path: Path) -> tuple[Path, Path]:
    from tests.data.test_data_files import _image

    root, splits = tmp_path / "imagenet", tmp_path / "splits"
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for label in range(3):
        for k in range(4):
            name = f"train/s{label}/{k}.JPEG"
            _image(root / name, 40 * k)
            lines["train"].append(f"{name} {label}")
        for split in ("val", "test"):
            name = f"val/{split}{label}.JPEG"
            _image(root / name)
            lines[split].append(f"{name} {label}")
    splits.mkdir()
    for split, rows in lines.items():
        (splits / f"ImageNet_LT_{split}.txt").write_text("\n".join(rows) + "\n")
    return root, splits


@pytest.mark.slow
@pytest.mark.parametrize(
    ("split", "line", "expected"),
    [
        ("test", "val/test0.JPEG 3", r"ImageNet_LT_test.txt:2: label 3 is outside 0..2"),
        ("val", "val/val0.JPEG -1", r"ImageNet_LT_val.txt:2: label -1 is outside 0..2"),
        ("test", "val/test0.JPEG", r"ImageNet_LT_test.txt:2: expected 'relative/path.JPEG label'"),
    ],
)
def test_bad_split_line_fails_at_set_up_naming_file_and_line(
    tmp_path: Path, split: str, line: str, expected: str
) -> None:
    root, splits = _imagenet_lt(tmp_path)
    path = splits / f"ImageNet_LT_{split}.txt"
    rows = path.read_text().splitlines()
    rows.insert(1, line)
    path.write_text("\n".join(rows) + "\n")
    proc = train(
        *TINY,
        "data=imagenet_lt",
        f"data.root={root}",
        f"data.split_dir={splits}",
        "data.image_size=16",
        "data.resize_size=16",
        "data.batch_size=4",
        "data.num_workers=0",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()  # before any training


def test_split_reader_checks_every_line_of_every_split(tmp_path: Path) -> None:
    from neurogrow.data import ImageNetLTDataModule
    from neurogrow.errors import UserError

    root, splits = _imagenet_lt(tmp_path)
    (splits / "ImageNet_LT_test.txt").write_text("val/test0.JPEG 0\n\nval/test1.JPEG 7\n")
    dm = ImageNetLTDataModule(root=root, split_dir=splits, image_size=16, resize_size=16, num_workers=0)
    with pytest.raises(UserError, match=r"ImageNet_LT_test.txt:3: label 7"):
        dm.setup("fit")
    assert os.path.isfile(splits / "ImageNet_LT_val.txt")
