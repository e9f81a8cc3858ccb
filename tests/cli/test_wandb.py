"""What a run sends to wandb, read back from the real offline run file."""

from __future__ import annotations

import os

import pytest

from neurogrow.report.dashboard import render_dashboard
from neurogrow.report.wandb_offline import read_offline_run
from tests.conftest import run_cli


def _surgery_now() -> list[str]:
    return [
        "surgery=default",
        "callbacks.surgery.schedule.start_epoch=0",
        "callbacks.surgery.schedule.interval=1",
    ]


@pytest.mark.slow
def test_wandb_run_is_named_tagged_and_summarised(run_experiment, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = run_experiment(
        "experiment=smoke",
        "logger=wandb",
        *_surgery_now(),
        "seed=3",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=2",
    )
    run = read_offline_run(run_dir)
    assert run.name == "smoke/resnet32_cifar-surgery-r0.1-s3"
    assert "None" not in run.name
    assert run.group == "smoke"
    for tag in (
        "backbone:resnet32_cifar",
        "dataset:cifar10_lt",
        "if:100",
        "method:surgery",
        "ratio:0.1",
        "seed:3",
    ):
        assert tag in run.tags
    assert "smoke" in run.tags  # the experiment's own tags stay
    # the final accuracies are in the run summary (the columns of a runs table)
    for key in ("test/acc", "test/acc_many", "test/acc_medium", "test/balanced_acc"):
        assert 0.0 <= run.summary[key] <= 1.0
    # the module's hyperparameters do not land at the top level; the config is nested by group
    assert not {"backbone", "num_classes", "class_counts", "small_input"} & run.config.keys()
    assert run.config["model"]["backbone"] == "resnet32_cifar"
    logged = set().union(*(row.keys() for row in run.history))
    assert "surgery/neurons_total" in logged  # the neuron count over training
    assert "test/per_class_accuracy/_type" in logged  # the per-class accuracy plot, and its file
    assert list(run_dir.glob("wandb/offline-run-*/files/media/images/test/per_class_accuracy_*.png"))
    assert "val/acc_many" in logged
    # the docs/wandb.md rendering works from this offline run
    png = render_dashboard([run_dir], run_dir / "dashboard.png")
    assert png.stat().st_size > 20_000
    assert os.path.isfile(run_dir / "config.yaml")
    assert "name: smoke/resnet32_cifar-surgery-r0.1-s3" in (run_dir / "config.yaml").read_text()


@pytest.mark.slow
def test_a_resumed_run_continues_its_wandb_run(tmp_path):
    """`neurogrow-train ckpt_path=...` into the same run directory logs to the first attempt's wandb run."""
    run = tmp_path / "run"
    base = ["experiment=smoke", "logger=wandb", f"hydra.run.dir={run}", "trainer.limit_train_batches=2"]
    base += ["trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]
    first = run_cli("neurogrow-train", *base, "trainer.max_epochs=1")
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_cli(
        "neurogrow-train", *base, "trainer.max_epochs=2", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    attempts = [read_offline_run(f) for f in sorted(run.glob("wandb/offline-run-*/run-*.wandb"))]
    assert len(attempts) == 2
    assert attempts[0].id and attempts[1].id == attempts[0].id
    assert attempts[1].name == attempts[0].name == "smoke/resnet32_cifar-conventional-s0"
    assert "test/acc" in attempts[1].summary
