"""What a run sends to wandb, read back from the real offline run file."""

from __future__ import annotations

import os

import pytest

from neurogrow.report.dashboard import render_dashboard
from neurogrow.report.wandb_offline import read_offline_run


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
