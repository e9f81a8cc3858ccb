"""Bad input through `neurogrow-train`: one clear line naming what to fix, before anything is trained;
errors that are not the project's own user errors keep their traceback."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from PIL import Image

from tests.robust.helpers import TINY, train


def _image(path: Path, value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 20), (value, 50, 200)).save(path)


def _folder(root: Path, classes: dict[str, int]) -> Path:
    for name, n in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            _image(root / name / f"{k}.png", 30 * k)
    return root


def _image_folder_args(train_dir: Path, *extra: str) -> tuple[str, ...]:
    return (
        *TINY,
        "data=image_folder",
        f"data.train_dir={train_dir}",
        "data.test_per_class=1",
        "data.image_size=16",
        "data.resize_size=16",
        "data.batch_size=4",
        *extra,
    )


def _one_line_error(proc, *needles: str) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("neurogrow-train: error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.mark.slow
def test_bad_image_with_dataloader_workers_is_one_line(tmp_path: Path) -> None:
    train_dir = _folder(tmp_path / "imgs", {"a": 4, "b": 4})
    for name in ("a", "b"):  # whichever image a worker reads first
        for k in range(4):
            (train_dir / name / f"{k}.png").write_bytes(b"not an image")
    proc = train(*_image_folder_args(train_dir, "data.num_workers=2"), f"hydra.run.dir={tmp_path / 'run'}")
    line = _one_line_error(proc, "cannot read image", str(train_dir))
    assert "DataLoader worker" not in line and "Original Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("data.imbalance_factor=abc", "data.imbalance_factor must be a number"),
        ("seed=abc", "seed must be an integer"),
        ("data.eval_batch_size=0", "data.eval_batch_size must be >= 1"),
        ("test_ckpt=nonsense.ckpt", "test_ckpt=nonsense.ckpt"),
        ("test_ckpt=best", "callbacks.model_checkpoint.monitor"),
    ],
)
def test_bad_values_name_their_key_before_any_work(tmp_path: Path, override: str, needle: str) -> None:
    run_dir = tmp_path / "run"
    proc = train(*TINY, override, f"hydra.run.dir={run_dir}")
    _one_line_error(proc, needle)
    assert not (run_dir / "class_counts.json").exists()
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.slow
def test_profile_that_fails_writes_no_class_counts(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = train(*TINY, "data.imbalance_factor=100000", f"hydra.run.dir={run_dir}")
    _one_line_error(proc, "no training images left for class(es)", "lower imbalance_factor")
    assert not (run_dir / "class_counts.json").exists()


@pytest.mark.slow
def test_image_folder_mistakes_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    proc = train(*_image_folder_args(missing), f"hydra.run.dir={tmp_path / 'r1'}")
    _one_line_error(proc, "train_dir", str(missing), "data.train_dir")

    single = _folder(tmp_path / "single", {"only": 4})
    proc = train(*_image_folder_args(single), f"hydra.run.dir={tmp_path / 'r2'}")
    _one_line_error(proc, "classification needs at least two", "only")

    empty = _folder(tmp_path / "with_empty", {"a": 3, "b": 3, "hollow": 0})
    proc = train(*_image_folder_args(empty), f"hydra.run.dir={tmp_path / 'r3'}")
    _one_line_error(proc, str(empty / "hollow"), "has no images")


@pytest.mark.slow
def test_optimizer_settings_torch_rejects_are_one_line(tmp_path: Path) -> None:
    proc = train(*TINY, "optimizer.momentum=-1", f"hydra.run.dir={tmp_path / 'run'}")
    _one_line_error(proc, "SGD rejected its settings", "momentum", "optimizer.")


@pytest.mark.slow
def test_errors_that_are_not_user_errors_keep_their_traceback(tmp_path: Path) -> None:
    # Lightning's own RuntimeError, raised during fit by a callback watching a metric nobody logs: not a
    # neurogrow.errors.UserError, so not hidden
    early_stop = "lightning.pytorch.callbacks.EarlyStopping"
    proc = train(
        *TINY,
        f"+callbacks.early_stop._target_={early_stop}",
        "+callbacks.early_stop.monitor=no_such_metric",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode not in (0, 2)
    assert "Traceback" in proc.stderr and "no_such_metric" in proc.stderr
    assert "neurogrow-train: error:" not in proc.stderr


@pytest.mark.slow
def test_run_files_are_readable_by_the_group(tmp_path: Path) -> None:
    proc = train(
        *TINY, "trainer.limit_val_batches=0", "++trainer.limit_test_batches=1", f"hydra.run.dir={tmp_path}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = ("metrics.json", "class_counts.json", "data.json", "config.yaml", "csv/metrics.csv")
    for name in (*names, "checkpoints/last.ckpt"):
        mode = (tmp_path / name).stat().st_mode
        assert mode & stat.S_IRGRP, f"{name}: {oct(mode)}"
