"""The real console script, end to end: run files, sweeps through submitit, clean errors."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli


def _run(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    return run_cli("neurogrow-train", *args, timeout=timeout)


@pytest.mark.slow
def test_smoke_experiment_writes_the_run_directory(tmp_path: Path):
    start = time.perf_counter()
    proc = _run(["experiment=smoke", f"hydra.run.dir={tmp_path}"])
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"smoke run took {elapsed:.1f} s")

    assert (tmp_path / ".hydra" / "config.yaml").is_file()
    resolved = (tmp_path / "config.yaml").read_text()
    assert "${" not in resolved and "resnet32_cifar" in resolved

    counts = json.loads((tmp_path / "class_counts.json").read_text())
    assert counts["class_counts"] == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"test/acc", "test/acc_many", "test/acc_medium", "test/acc_per_class"} <= metrics.keys()
    assert "test/acc_few" not in metrics  # CIFAR-10-LT has no class with fewer than 20 images
    assert len(metrics["test/acc_per_class"]) == 10
    assert 0.0 <= metrics["test/acc"] <= 1.0
    # the overall accuracy is over the full balanced test set: the mean of the per-class accuracies
    assert metrics["test/acc"] == pytest.approx(sum(metrics["test/acc_per_class"]) / 10, abs=1e-6)

    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["backbone"] == "resnet32_cifar"
    assert (tmp_path / "per_class_accuracy.png").stat().st_size > 1000
    # wandb is on by default, offline, inside the run directory
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline wandb run written"
    assert "Many" in proc.stdout and "Few" in proc.stdout  # the summary table


@pytest.mark.slow
def test_submitit_local_multirun_gives_one_run_directory_per_job(tmp_path: Path):
    proc = _run(
        [
            "-m",
            "hydra/launcher=local",
            "experiment=smoke",
            "logger=csv",
            "optimizer.lr=0.05,0.1",
            "trainer.max_epochs=1",
            "trainer.limit_test_batches=2",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    job_dirs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in job_dirs] == ["0", "1"]
    lrs = []
    for job in job_dirs:
        assert json.loads((job / "metrics.json").read_text())["test/acc"] >= 0
        lrs.append(float((job / "config.yaml").read_text().split("lr: ")[1].split()[0]))
    assert lrs == [0.05, 0.1]
    assert list((tmp_path / ".submitit").glob("*")), "jobs did not go through submitit"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model.backbone=resnet33"], "Did you mean"),
        (["data.imbalance_factor=0.5"], "imbalance"),
        (["data=cifar10_lt_nonexistent"], "Could not find 'data/cifar10_lt_nonexistent'"),
    ],
)
def test_bad_input_gives_one_clear_error_not_a_traceback(overrides, expected, tmp_path: Path):
    proc = _run(["experiment=smoke", "logger=csv", f"hydra.run.dir={tmp_path}", *overrides], timeout=300)
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_data_says_where_to_put_the_files(tmp_path: Path):
    proc = _run(
        [
            "experiment=smoke",
            "logger=csv",
            f"hydra.run.dir={tmp_path / 'run'}",
            f"paths.data_dir={tmp_path / 'empty'}",
            f"paths.shared_data_dir={tmp_path / 'nothing'}",
            "data.download=false",
        ],
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(tmp_path / "empty") in proc.stderr
