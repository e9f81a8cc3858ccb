"""Synthetic run directories with hand-chosen metrics, laid out as `neurogrow-train` writes them."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

from neurogrow.surgery.events import EventLog, GroupChange, SurgeryEvent
from tests.conftest import run_cli

COUNTS = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def write_run(
    run_dir: Path,
    *,
    seed: int,
    acc: float | None,
    surgery: dict | None = None,
    backbone: str = "resnet18",
    many: float | None = None,
    per_class: Sequence[float] | None = None,
    events: int = 0,
    extra: dict | None = None,
) -> Path:
    """A run directory; `acc=None` leaves it unfinished (no metrics.json)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "task_name": "grid",
        "seed": seed,
        "paths": {"output_dir": str(run_dir), "root_dir": "."},
        "data": {
            "_target_": "neurogrow.data.CIFAR10LTDataModule",
            "imbalance_factor": 100,
            "seed": seed,
            "batch_size": 128,
        },
        "model": {"_target_": "neurogrow.models.LongTailClassifier", "backbone": backbone},
        "optimizer": {"lr": 0.1},
        "callbacks": {"model_checkpoint": {"dirpath": f"{run_dir}/checkpoints", "save_last": True}},
        "logger": {"wandb": {"name": f"grid-{seed}"}},
        **(extra or {}),
    }
    if surgery is not None:
        config["callbacks"]["surgery"] = {"_target_": "neurogrow.surgery.NeuronSurgery", **surgery}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / ".hydra").mkdir(exist_ok=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: ${seed}\n")  # must not count as a run
    (run_dir / "class_counts.json").write_text(json.dumps({"class_counts": COUNTS}))
    if acc is not None:
        metrics = {"test/acc": acc, "test/balanced_acc": acc, "test/acc_medium": acc}
        metrics["test/acc_many"] = many if many is not None else acc
        metrics["test/acc_per_class"] = list(per_class) if per_class else [acc] * 10
        (run_dir / "metrics.json").write_text(json.dumps(metrics))
    log = EventLog(run_dir)
    for i in range(events):
        change = GroupChange(
            name=f"layer{i % 2}",
            kind="conv",
            size=64,
            added=[1, 2],
            sources=[3, 4],
            removed=[1, 2],
            n_added=2,
            n_removed=2,
        )
        log.write(
            SurgeryEvent(
                event=i,
                epoch=29 + 30 * i,
                global_step=100 * i,
                criterion="accum_grad",
                ratio=0.1,
                phase="paired",
                neurons_total=1000,
                groups=[change],
            )
        )
    return run_dir


# One epoch of two batches, a surgery event at its end, a test pass over 1000 images.
TINY = [
    "experiment=smoke",
    "logger=csv",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=2",
    "callbacks.progress_bar.every_n_batches=1",
]


SURGERY_NOW = [  # an event at the end of epoch 0
    "surgery=default",
    "callbacks.surgery.schedule.start_epoch=0",
    "callbacks.surgery.schedule.interval=1",
    "callbacks.surgery.schedule.num_events=1",
]


def _run_sweep(root: Path) -> dict[str, subprocess.CompletedProcess]:
    procs = {
        # stdout is a pipe, not a terminal, as under SLURM
        "conventional": run_cli(
            "neurogrow-train", "-m", *TINY, "seed=0,1", f"hydra.sweep.dir={root}/conventional", timeout=1200
        ),
        "surgery": run_cli(
            "neurogrow-train",
            *("-m", *TINY, *SURGERY_NOW, "seed=0,1", f"hydra.sweep.dir={root}/surgery"),
            timeout=1200,
        ),
    }
    for proc in procs.values():
        assert proc.returncode == 0, proc.stderr[-3000:]
    return procs


@pytest.fixture(scope="session")
def sweep(tmp_path_factory) -> tuple[Path, dict[str, subprocess.CompletedProcess]]:
    """A real sweep (2 seeds, conventional and surgery), run once per test session: under xdist the
    first worker to need it runs it, the others wait on a file lock and read its recorded output."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # one process: no sharing needed
        root = tmp_path_factory.mktemp("sweep")
        return root, _run_sweep(root)
    root = tmp_path_factory.getbasetemp().parent / "shared_sweep"
    record = root / "procs.json"
    with FileLock(f"{root}.lock"):
        if not record.is_file():
            procs = _run_sweep(root)
            saved = {k: [p.args, p.returncode, p.stdout, p.stderr] for k, p in procs.items()}
            record.write_text(json.dumps(saved))
    saved = json.loads(record.read_text())
    return root, {k: subprocess.CompletedProcess(*v) for k, v in saved.items()}
