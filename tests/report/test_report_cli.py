"""A real sweep (conventional vs surgery, two seeds each) through `neurogrow-train -m`, run once, then:
`neurogrow report` over it, the end-of-sweep summary, `train.log` and the progress lines of a non-terminal."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.report.conftest import TINY


@pytest.mark.slow
def test_neurogrow_report_reproduces_the_runs_metrics(sweep, tmp_path: Path):
    root, _ = sweep
    out = tmp_path / "report"
    proc = run_cli("neurogrow", "report", str(root), "--reference", "method=conventional", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]

    acc = {}
    for arm in ("conventional", "surgery"):
        for job in ("0", "1"):
            metrics = json.loads((root / arm / job / "metrics.json").read_text())
            acc[arm, int(job)] = 100 * metrics["test/acc"]  # the sweep seed=0,1 makes jobs 0, 1
    conv = [acc["conventional", 0], acc["conventional", 1]]
    assert f"| conventional | 2 | {statistics.mean(conv):.2f} ± {statistics.stdev(conv):.2f} |" in proc.stdout
    diffs = [acc["surgery", s] - acc["conventional", s] for s in (0, 1)]
    assert f"| method=surgery | 2 | {statistics.mean(diffs):+.2f} [" in proc.stdout
    # the sweeps' own report folders are not mistaken for runs; both arms' runs are all there
    assert proc.stdout.count("| conventional/") == 2 and proc.stdout.count("| surgery/") == 2
    assert (out / "neuron_counts.png").is_file() and (out / "per_class_accuracy.png").is_file()


@pytest.mark.slow
def test_a_sweep_prints_and_writes_its_report_when_it_ends(sweep):
    root, procs = sweep
    assert "sweep report:" in procs["conventional"].stdout
    assert "| n | overall |" in procs["conventional"].stdout
    table = (root / "surgery" / "report" / "report.md").read_text()
    assert "2 finished run(s) in 1 group(s)" in table  # seeds are replicates, not groups


@pytest.mark.slow
def test_train_log_has_every_epoch_and_every_surgery_event(sweep):
    root, _ = sweep
    log = (root / "surgery" / "0" / "train.log").read_text()
    assert "epoch 1/1: train/loss=" in log
    assert "val/acc=" in log and "val/acc_many=" in log and "val/acc_medium=" in log
    events = [
        json.loads(x) for x in (root / "surgery" / "0" / "surgery_events.jsonl").read_text().splitlines()
    ]
    n_events = sum(e.get("type") == "event" for e in events)
    assert n_events == 1 and log.count("neuron surgery event") == n_events


@pytest.mark.slow
def test_progress_is_plain_lines_when_stdout_is_not_a_terminal(sweep):
    _, procs = sweep
    out = procs["surgery"].stdout
    assert "\r" not in out and "\x1b[" not in out  # no carriage returns, no escape codes
    assert "[epoch 1/1] batch 1/2" in out and "[epoch 1/1] batch 2/2" in out
    done = next(line for line in out.splitlines() if line.startswith("[epoch 1/1] done"))
    assert "val/acc=" in done and "val/acc_many=" in done


@pytest.mark.slow
def test_a_sweep_with_a_failed_job_trains_the_others_and_still_reports(tmp_path: Path):
    """`-m` over two jobs, the first with a setting torch rejects: the second still trains, the sweep exits
    1 with one line per failure and no traceback, and its report lists the finished and the failed run."""
    proc = run_cli(
        "neurogrow-train",
        "-m",
        *TINY,
        "optimizer.momentum=-1,0.9",
        f"hydra.sweep.dir={tmp_path}",
        timeout=1200,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("neurogrow-train: error:")]
    assert len(errors) == 2, proc.stderr[-3000:]
    assert "momentum" in errors[0] and errors[1].startswith("neurogrow-train: error: sweep job 0 failed: ")
    assert (tmp_path / "0" / "error.txt").is_file() and not (tmp_path / "0" / "metrics.json").exists()
    assert json.loads((tmp_path / "1" / "metrics.json").read_text())["test/acc"] >= 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Failed or unfinished runs" in report and "momentum" in report
    assert "sweep report:" in proc.stdout
