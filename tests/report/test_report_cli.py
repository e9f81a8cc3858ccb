"""A real sweep (conventional vs surgery, two seeds) through `neurogrow-train -m`, then `neurogrow report`."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# One epoch of two batches, a surgery event at its end, a test pass over 1000 images.
TINY = [
    "experiment=smoke",
    "logger=csv",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=2",
]
SURGERY_NOW = [
    "callbacks.surgery.start_epoch=0",
    "callbacks.surgery.interval=1",
    "callbacks.surgery.last_epoch=0",
]


def _cli(module: str, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "1"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )


@pytest.mark.slow
def test_sweep_prints_its_report_and_neurogrow_report_reproduces_the_metrics(tmp_path: Path):
    sweep = tmp_path / "sweep"
    conv = _cli("neurogrow.cli.train", ["-m", *TINY, "seed=0,1", f"hydra.sweep.dir={sweep}/conventional"])
    assert conv.returncode == 0, conv.stderr[-3000:]
    assert "sweep report:" in conv.stdout and "| n |" in conv.stdout  # the Hydra callback at the end
    assert (sweep / "conventional" / "report" / "report.md").is_file()

    surg = _cli(
        "neurogrow.cli.train",
        ["-m", *TINY, "callbacks=surgery", *SURGERY_NOW, "seed=0,1", f"hydra.sweep.dir={sweep}/surgery"],
    )
    assert surg.returncode == 0, surg.stderr[-3000:]

    out = tmp_path / "report"
    proc = _cli(
        "neurogrow.cli.tool", ["report", str(sweep), "--reference", "method=conventional", "--out", str(out)]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    acc = {}
    for arm in ("conventional", "surgery"):
        for job in ("0", "1"):
            metrics = json.loads((sweep / arm / job / "metrics.json").read_text())
            acc[arm, int(job)] = 100 * metrics["test/acc"]  # the sweep seed=0,1 makes jobs 0, 1
    conv_mean = statistics.mean([acc["conventional", 0], acc["conventional", 1]])
    conv_std = statistics.stdev([acc["conventional", 0], acc["conventional", 1]])
    assert f"| conventional | 2 | {conv_mean:.2f} ± {conv_std:.2f} |" in proc.stdout
    diffs = [acc["surgery", s] - acc["conventional", s] for s in (0, 1)]
    assert f"| method=surgery | 2 | {statistics.mean(diffs):+.2f} [" in proc.stdout
    # the sweep's own report folder is not mistaken for runs; both arms' runs are all there
    assert proc.stdout.count("| conventional/") == 2 and proc.stdout.count("| surgery/") == 2
    assert (out / "neuron_counts.png").is_file() and (out / "per_class_accuracy.png").is_file()
    events = [
        json.loads(x) for x in (sweep / "surgery" / "0" / "surgery_events.jsonl").read_text().splitlines()
    ]
    assert any(e.get("type") == "event" for e in events)
