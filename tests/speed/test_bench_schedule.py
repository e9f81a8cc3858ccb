"""`make bench` scales the paper's 150-epoch schedule to its epochs and pairs runs by seed."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, compose_config

_spec = importlib.util.spec_from_file_location("does_it_help", REPO_ROOT / "benchmarks" / "does_it_help.py")
does_it_help = importlib.util.module_from_spec(_spec)
sys.modules["does_it_help"] = does_it_help  # dataclasses look their module up
_spec.loader.exec_module(does_it_help)


def test_150_epochs_give_the_papers_schedule():
    s = does_it_help.schedule(150)
    events = [s["start_epoch"] + i * s["interval"] + 1 for i in range(s["num_events"])]
    assert events == [30, 60, 90, 120]  # "after" epoch n = end of 0-indexed epoch n - 1
    assert (s["milestone_1"], s["milestone_2"], s["warmup"]) == (120, 135, 5)


def test_30_epochs_put_events_after_20_40_60_80_percent():
    s = does_it_help.schedule(30)
    assert [s["start_epoch"] + i * s["interval"] + 1 for i in range(4)] == [6, 12, 18, 24]
    assert (s["milestone_1"], s["milestone_2"]) == (24, 27)


def test_the_two_arms_compose_to_the_same_run_but_for_surgery(tmp_path: Path):
    class Args:
        epochs, limit_train_batches, extra = 30, None, []

    cfgs = {}
    for arm in does_it_help.ARMS:
        job = does_it_help.Job(arm, seed=3)
        overrides = [o for o in job.overrides(Args, tmp_path, does_it_help.CPU_FAST) if "hydra." not in o]
        cfgs[arm] = compose_config(*overrides, output_dir=tmp_path)
    conv, surg = cfgs["conventional"], cfgs["surgery"]
    assert "surgery" not in conv.callbacks
    assert surg.callbacks.surgery.schedule.start_epoch == 5 and surg.callbacks.surgery.schedule.interval == 6
    for key in ("seed", "data", "model", "optimizer", "scheduler", "loss"):
        assert conv[key] == surg[key], key
    assert conv.seed == 3 and conv.trainer.max_epochs == 30 and conv.trainer.limit_val_batches == 0
    assert list(conv.scheduler.milestones) == [24, 27]


def test_pairing_check_reads_the_loss_histories(tmp_path: Path):
    rows = {"conventional": [2.0, 1.5, 1.2], "surgery": [2.0, 1.5, 1.3]}
    for arm, losses in rows.items():
        run = tmp_path / f"{arm}_seed0"
        run.mkdir()
        lines = ["epoch,step,train/loss_epoch"] + [f"{e},{e},{v}" for e, v in enumerate(losses)]
        (run / "metrics.csv").write_text("\n".join(lines) + "\n")
    report = does_it_help.check_pairing(
        tmp_path, seeds=1, epochs=5
    )  # first event after epoch 1 (0-indexed 0)
    seed0 = report["seeds"]["0"]
    assert seed0["identical_until_first_event"] and seed0["epochs_compared"] == 1
    assert abs(seed0["abs_train_loss_diff_next_epoch"]) == 0.0  # epoch 1: still equal in this history
    assert json.loads((tmp_path / "pairing.json").read_text()) == report


def test_time_and_machine_summarises_the_run_records(tmp_path: Path):
    machine = {"cpu": "Test CPU", "cores": 2, "processes": 2, "threads_per_process": 1, "bf16": True}
    machine |= {"torch": "2.x", "gpu": None}
    runs = [("conventional", 0, 600.0, "2026-01-01 10:10:00"), ("surgery", 0, 660.0, "2026-01-01 10:11:00")]
    runs += [("conventional", 1, 630.0, "2026-01-01 10:21:00")]
    for arm, seed, wall, finished in runs:
        run = tmp_path / f"{arm}_seed{seed}"
        run.mkdir()
        info = {"arm": arm, "seed": seed, "wall_time_s": wall, "s_per_epoch": wall / 30, "finished": finished}
        (run / "run.json").write_text(json.dumps({**info, "machine": machine}))
    text = does_it_help.time_and_machine(tmp_path)
    assert "| conventional | 2 | 20.5 (20.0-21.0) | 10.2 |" in text
    assert "| surgery | 1 | 22.0 (22.0-22.0) | 11.0 |" in text
    assert "21 min for 3 runs" in text  # 10:00:00 (first start) to 10:21:00
    assert "Test CPU, 2 cores, 2 runs at a time x 1 intra-op thread(s), bf16 autocast on" in text


def test_surgery_variant_overrides_reach_the_surgery_arm_only(tmp_path: Path):
    args = argparse.Namespace(epochs=30, limit_train_batches=None, extra=["data.val_per_class=20"])
    args.surgery = ["callbacks.surgery.split.reinit=he"]
    conv, surg = (does_it_help.Job(arm, seed=0).overrides(args, tmp_path, ()) for arm in does_it_help.ARMS)
    assert "callbacks.surgery.split.reinit=he" in surg and "callbacks.surgery.split.reinit=he" not in conv
    assert "data.val_per_class=20" in conv and "data.val_per_class=20" in surg
