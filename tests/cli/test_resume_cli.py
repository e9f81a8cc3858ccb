"""Checkpoints through `neurogrow-train` itself: resume, exact resume after SIGKILL, NaN, bad files."""

from __future__ import annotations

import csv
import random
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO_ROOT, cli_env, console_script, run_cli

TRAIN = console_script("neurogrow-train")
# Tiny runs: a few batches of CIFAR-10-LT, one test batch, metrics as CSV only.
TINY = [
    "experiment=smoke",
    "logger=csv",
    "data.batch_size=16",
    "data.eval_batch_size=100",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
]


def train(run_dir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return run_cli("neurogrow-train", *TINY, f"hydra.run.dir={run_dir}", *args, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, proc.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def trained_epochs(run_dir: Path) -> set[int]:
    return {int(float(r["epoch"])) for r in csv_rows(run_dir) if r.get("train/loss_epoch")}


@pytest.mark.slow
def test_resume_and_test_best_load_safely_and_keep_the_metric_history(tmp_path: Path) -> None:
    run = tmp_path / "run"
    best = ["data.val_per_class=5", "callbacks.model_checkpoint.monitor=val/acc", "test_ckpt=best"]
    first = train(run, "trainer.max_epochs=1", *best)
    assert first.returncode == 0, first.stderr[-3000:]
    last = run / "checkpoints" / "last.ckpt"
    torch.load(last, map_location="cpu", weights_only=True)  # what Lightning does for ckpt_path=
    assert trained_epochs(run) == {0}
    config = (run / "config.yaml").read_text()

    # A resume that fails (corrupt checkpoint) keeps the history and says so in one line.
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    failed = train(run, "trainer.max_epochs=2", f"ckpt_path={corrupt}", *best)
    assert_one_line_error(failed, str(corrupt), "not a readable checkpoint")
    assert trained_epochs(run) == {0}

    resumed = train(run, "trainer.max_epochs=2", f"ckpt_path={last}", *best)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert trained_epochs(run) == {0, 1}  # epoch 0's rows are still there, epoch 1's appended
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 6  # 2 epochs x 3, once
    assert (run / "metrics.json").is_file()
    # the run's own config stays its record; each resume's config is kept beside it
    assert (run / "config.yaml").read_text() == config and "ckpt_path: null" in config
    assert f"ckpt_path: {last}" in (run / "config.resume-2.yaml").read_text()


SURGERY = [
    "surgery=default",  # an event at the end of every epoch
    "callbacks.surgery.schedule.start_epoch=0",
    "callbacks.surgery.schedule.interval=1",
    "callbacks.surgery.schedule.num_events=3",
    "callbacks.surgery.ratio=0.2",
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=12",
    "data.batch_size=8",
]


def decisions(run_dir: Path) -> dict[int, list]:
    from neurogrow.surgery.events import read_events

    # keyed by epoch: a resumed run appends the events after the interrupted epoch again
    events = read_events(run_dir)
    return {e["epoch"]: [(g["name"], g["sources"], g["removed"]) for g in e["groups"]] for e in events}


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)[
        "state_dict"
    ]


@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_exactly_like_an_uninterrupted_one(tmp_path: Path) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    # every step logged and written at once, so the killed attempt leaves rows of the epoch it replays
    logging = ["trainer.log_every_n_steps=1", "+logger.csv.flush_logs_every_n_steps=1"]
    proc = subprocess.Popen(
        [
            TRAIN,
            *TINY,
            f"hydra.run.dir={killed}",
            *SURGERY,
            *logging,
            "callbacks.progress_bar.every_n_batches=1",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=cli_env(NEUROGROW_PROGRESS="plain"),  # one line per batch: we kill inside epoch 1
    )
    last = killed / "checkpoints" / "last.ckpt"
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # "[epoch 2/3] batch 4/12 ...": the 4th of 12 batches of epoch 1 is done
            if line.startswith("[epoch 2/3] batch 4/"):
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 0, "killed too late"
    assert not (killed / "metrics.json").exists()

    assert any(int(r["epoch"] or -1) == 1 for r in csv_rows(killed) if r.get("train/loss_step")), (
        "no replayed rows"
    )

    resumed = train(killed, *SURGERY, *logging, f"ckpt_path={last}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    uninterrupted = train(straight, *SURGERY, *logging)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]

    expected = decisions(straight)
    assert sorted(expected) == [0, 1, 2]
    assert decisions(killed) == expected
    a, b = final_weights(straight), final_weights(killed)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ after the resume: {different[:5]}"
    # every step once in the metric history, with the uninterrupted run's losses
    losses = [
        [(r["step"], r["train/loss_step"]) for r in csv_rows(d) if r.get("train/loss_step")]
        for d in (straight, killed)
    ]
    assert losses[0] == losses[1] and len(losses[0]) == 3 * 12


@pytest.mark.slow
def test_non_finite_loss_stops_the_run_without_saving_or_reporting_it(tmp_path: Path) -> None:
    # One batch per epoch: the first step's loss is finite, its update makes every weight NaN.
    proc = train(tmp_path, "optimizer.lr=nan", "trainer.limit_train_batches=1", "trainer.max_epochs=2")
    assert_one_line_error(proc, "training diverged", "optimizer.lr")
    assert not (tmp_path / "metrics.json").exists()
    assert "Overall" not in proc.stdout
    for ckpt in (tmp_path / "checkpoints").glob("*.ckpt"):
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()), ckpt


class _CreatesFile:
    """Unpickling this runs `open(path, "w")`: what a malicious checkpoint could do."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def crafted_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {"model.x": torch.zeros(1)}, "payload": _CreatesFile(marker)}, ckpt)
    return ckpt, marker


@pytest.mark.slow
@pytest.mark.parametrize("option", ["init_from", "ckpt_path"])
def test_train_never_runs_code_from_a_checkpoint(tmp_path: Path, option: str) -> None:
    ckpt, marker = crafted_checkpoint(tmp_path)
    proc = train(tmp_path / "run", f"{option}={ckpt}")
    assert_one_line_error(proc, str(ckpt), "trust_checkpoint=true")
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["random", "truncated"])
def test_train_with_a_corrupt_init_from_says_so_in_one_line(tmp_path: Path, kind: str) -> None:
    bad = tmp_path / f"{kind}.ckpt"
    if kind == "random":
        bad.write_bytes(random.Random(0).randbytes(4096))
    else:
        torch.save({"state_dict": {"model.x": torch.randn(1000)}}, bad)
        bad.write_bytes(bad.read_bytes()[:-700])
    proc = train(tmp_path / "run", f"init_from={bad}")
    assert_one_line_error(proc, str(bad), "not a readable checkpoint")


@pytest.mark.slow
def test_train_with_a_random_ckpt_path_says_so_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "random.ckpt"
    bad.write_bytes(random.Random(0).randbytes(4096))
    proc = train(tmp_path / "run", f"ckpt_path={bad}")
    assert_one_line_error(proc, str(bad), "not a readable checkpoint")
