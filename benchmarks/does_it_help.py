"""Does neuron surgery help? Conventional training vs `surgery=default`, paired by seed (`make bench`).

CIFAR-10-LT (IF=100, exponential) from the offline copy, ResNet-32, the LDAM-DRW recipe
(`experiment=cifar10_lt_ce`; the surgery arm adds `surgery=default`) with everything that is counted in
epochs scaled to `--epochs`: surgery events after 20/40/60/80 % of training (the paper: after
30/60/90/120 of 150), learning-rate drops at 80 % and 90 % (the paper's 120 and 135 of 150), warm-up
5 epochs (fewer for very short runs). `trainer=cpu_fast` (bf16 where the CPU supports it), the test set
evaluated once, at the end. Both arms of a seed share initialisation and data order, so they are identical
until the first event; the script checks that from the training-loss history and records it in
`pairing.json`.

Every finished run leaves a slim copy (config.yaml, metrics.json, class_counts.json, metrics.csv,
surgery_events.jsonl, run.json with seed, arm, epochs, wall time, s/epoch, machine) in
`benchmarks/results/does_it_help/<arm>_seed<k>/`; the full run directories (checkpoints) stay in the
ignored `outputs/does_it_help/`. A rerun skips finished runs, so an interrupted benchmark continues where it
stopped; `--commit` commits each finished run. The report is `neurogrow report` over the slim copies:
`benchmarks/results/does_it_help.md` (figures and CSVs in `benchmarks/results/does_it_help_report/`), with
the hand-written reading of the numbers from `does_it_help_reading.md` beside it appended.

Parallelism: `--processes 2 --threads 1` (two runs at a time, one intra-op thread each; the two arms of a
seed run side by side): measured 2.5x and 9x (two interleaved rounds) the images/s of one process with
2 threads (raw bf16 channels_last ResNet-32 loop, load 8-11 on the 2 cores, which favours more processes;
2 intra-op threads also spin badly when the cores are shared).
Time, measured (2026-11-28, idle AMD EPYC, 2 cores, bf16 autocast, channels_last): 40-43 s per epoch for
each of the two runs side by side (a run's wall time / epochs, start-up and test pass included), 20-22 min
per run; the default 5 seeds x 2 arms x 30 epochs took 104 min from the first start to the last finish.
On a loaded machine (load 10-13) a step took 1.44 s instead (training_speed.txt at the time): ~6 h.

    make bench                                  # = python benchmarks/does_it_help.py --commit
    python benchmarks/does_it_help.py --epochs 2 --seeds 2 --limit-train-batches 3 \
        --results /tmp/dih --scratch /tmp/dih_runs --report /tmp/dih.md    # a quick end-to-end check
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARMS = ("conventional", "surgery")
# The LDAM-DRW ResNet-32 recipe (SGD lr 0.1, momentum 0.9, wd 2e-4, warm-up, step decay); the arms differ only
# in the surgery group.
ARM_OVERRIDES = {
    "conventional": ("experiment=cifar10_lt_ce",),
    "surgery": ("experiment=cifar10_lt_ce", "surgery=default"),
}
CPU_FAST = ("trainer=cpu_fast", "model.channels_last=true")  # both measured faster: training_speed.txt
SLIM_FILES = ("config.yaml", "metrics.json", "class_counts.json", "surgery_events.jsonl", "data.json")


def schedule(epochs: int) -> dict[str, int]:
    """The paper's 150-epoch schedule scaled to `epochs` (0-indexed end-of-epoch surgery events)."""
    interval = max(1, round(0.2 * epochs))
    return {
        "start_epoch": interval - 1,  # after 20 % of training, then every 20 %: 20/40/60/80 %
        "interval": interval,
        "num_events": 4,
        "milestone_1": max(1, round(0.8 * epochs)),
        "milestone_2": max(1, round(0.9 * epochs)),
        "warmup": min(5, epochs // 6),
    }


@dataclass
class Job:
    arm: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.arm}_seed{self.seed}"

    def overrides(self, args: argparse.Namespace, run_dir: Path, hardware: Sequence[str]) -> list[str]:
        """The run's `neurogrow-train` overrides; `hardware` picks trainer/precision/layout."""
        s = schedule(args.epochs)
        out = [
            *ARM_OVERRIDES[self.arm],
            *hardware,
            "logger=csv",
            f"seed={self.seed}",
            f"task_name=does_it_help_{self.arm}",
            f"trainer.max_epochs={args.epochs}",
            "trainer.limit_val_batches=0",  # the test set once, after training: no per-epoch evaluation
            f"scheduler.milestones=[{s['milestone_1']},{s['milestone_2']}]",
            f"scheduler.warmup_epochs={s['warmup']}",
            "data.eval_batch_size=1000",
            "callbacks.progress_bar.refresh_rate=0",
            f"hydra.run.dir={run_dir}",
        ]
        if self.arm == "surgery":
            out += [
                f"callbacks.surgery.schedule.start_epoch={s['start_epoch']}",
                f"callbacks.surgery.schedule.interval={s['interval']}",
                f"callbacks.surgery.schedule.num_events={s['num_events']}",
                *(getattr(args, "surgery", None) or []),
            ]
        if args.limit_train_batches:
            out.append(f"trainer.limit_train_batches={args.limit_train_batches}")
        return out + list(args.extra)


def machine(args: argparse.Namespace) -> dict[str, object]:
    import torch

    from neurogrow.precision import cpu_bf16_supported, cpu_model

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "processes": args.processes,
        "threads_per_process": args.threads,
        "bf16": cpu_bf16_supported(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "host": platform.node(),
    }


def slim_copy(run_dir: Path, dest: Path, info: dict[str, object]) -> None:
    """The files the report needs (no checkpoints), written to a temporary folder and renamed into place."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in SLIM_FILES:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, tmp / name)
    history = run_dir / "csv" / "metrics.csv"
    if history.is_file():
        shutil.copy2(history, tmp / "metrics.csv")
    (tmp / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def epoch_losses(run: Path) -> dict[int, float]:
    """Epoch -> mean training loss, from the run's metrics.csv."""
    path = run / "metrics.csv"
    if not path.is_file():
        return {}
    out = {}
    for row in csv.DictReader(path.open()):
        if row.get("train/loss_epoch") and row.get("epoch"):
            out[int(float(row["epoch"]))] = float(row["train/loss_epoch"])
    return out


def check_pairing(results: Path, seeds: int, epochs: int) -> dict[str, object]:
    """Per seed: the largest training-loss difference of the two arms over the epochs up to and including
    the first event's epoch (identical runs: 0), and the first epoch after it (where they may part)."""
    first = schedule(epochs)["start_epoch"]
    report: dict[str, object] = {"first_event_epoch": first, "seeds": {}}
    for seed in range(seeds):
        a, b = (epoch_losses(results / f"{arm}_seed{seed}") for arm in ARMS)
        before = [e for e in sorted(a) if e <= first and e in b]
        if not before:
            continue
        diff = max(abs(a[e] - b[e]) for e in before)
        after = [abs(a[e] - b[e]) for e in sorted(a) if e > first and e in b]
        report["seeds"][str(seed)] = {
            "epochs_compared": len(before),
            "max_abs_train_loss_diff_until_first_event": diff,
            "identical_until_first_event": diff == 0.0,
            "abs_train_loss_diff_next_epoch": after[0] if after else None,
        }
    (results / "pairing.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


_GIT = threading.Lock()  # gpu_paper_scale runs one runner per model in threads: one git command at a time


def git_commit(paths: list[Path], message: str) -> None:
    """Commit `paths` only: whatever else a developer has staged meanwhile stays staged, uncommitted."""
    names = list(map(str, paths))
    with _GIT:
        subprocess.run(["git", "add", "--", *names], cwd=REPO, check=True)
        staged = subprocess.run(["git", "diff", "--cached", "--quiet", "--", *names], cwd=REPO)
        if staged.returncode:
            subprocess.run(["git", "commit", "-q", "-m", message, "--", *names], cwd=REPO, check=True)


def run_all(args: argparse.Namespace, hardware: Sequence[str] = CPU_FAST) -> None:
    """Train every missing (arm, seed) run, `args.processes` at a time, and check the pairing."""
    results, scratch = args.results.resolve(), args.scratch.resolve()
    results.mkdir(parents=True, exist_ok=True)
    jobs = [Job(arm, seed) for seed in range(args.seeds) for arm in ARMS]
    todo = [j for j in jobs if not (results / j.name / "metrics.json").is_file()]
    print(f"{len(jobs) - len(todo)} of {len(jobs)} runs already finished; {len(todo)} to go", flush=True)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "WANDB_SILENT": "true",
        "HYDRA_FULL_ERROR": "1",
    }
    info0 = machine(args)
    running: list[tuple[Job, subprocess.Popen, float, Path, object]] = []
    failed = []
    while todo or running:
        while todo and len(running) < args.processes:
            job = todo.pop(0)
            run_dir = scratch / job.name
            shutil.rmtree(run_dir, ignore_errors=True)  # an interrupted run restarts from scratch
            run_dir.mkdir(parents=True)
            log = (run_dir / "train.log").open("w")
            cmd = [sys.executable, "-m", "neurogrow.cli.train", *job.overrides(args, run_dir, hardware)]
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            running.append((job, proc, time.time(), run_dir, os.getloadavg()))
            print(f"started {job.name}", flush=True)
        time.sleep(2)
        for item in list(running):
            job, proc, start, run_dir, load0 = item
            if proc.poll() is None:
                continue
            running.remove(item)
            wall = time.time() - start
            if proc.returncode != 0 or not (run_dir / "metrics.json").is_file():
                failed.append(job.name)
                print(f"FAILED {job.name} (rc {proc.returncode}); see {run_dir / 'train.log'}", flush=True)
                continue
            acc = json.loads((run_dir / "metrics.json").read_text())["test/acc"]
            info = {
                "seed": job.seed,
                "arm": job.arm,
                "epochs": args.epochs,
                "limit_train_batches": args.limit_train_batches,
                "wall_time_s": round(wall, 1),
                "s_per_epoch": round(wall / args.epochs, 2),
                "load_avg_start": list(load0),
                "load_avg_end": list(os.getloadavg()),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                "machine": info0,
                "command": " ".join(job.overrides(args, Path("<run dir>"), hardware)),
            }
            slim_copy(run_dir, results / job.name, info)
            print(f"finished {job.name}: test acc {acc:.4f}, {wall / args.epochs:.1f} s/epoch", flush=True)
            if args.commit:
                git_commit([results / job.name], f"does_it_help: {job.name} finished ({args.epochs} epochs)")
    pairing = check_pairing(results, args.seeds, args.epochs)
    print("pairing (arms identical until the first event?):", json.dumps(pairing["seeds"]), flush=True)
    if failed:
        raise SystemExit(f"{len(failed)} runs failed: {', '.join(failed)}; rerun to retry them")


def time_and_machine(results: Path) -> str:
    """Per arm the seconds per epoch (a run's wall time / epochs: start-up and the final test pass
    included), the benchmark's span from the first start to the last finish, and the machine (run.json)."""
    infos = [json.loads(p.read_text()) for p in sorted(results.glob("*/run.json"))]
    if not infos:
        return ""
    lines = ["", "## Time and machine", "", "| arm | runs | s/epoch mean (min-max) | minutes per run |"]
    lines.append("|---|---|---|---|")
    for arm in ARMS:
        per_epoch = [i["s_per_epoch"] for i in infos if i["arm"] == arm]
        minutes = [i["wall_time_s"] / 60 for i in infos if i["arm"] == arm]
        if per_epoch:
            lines.append(
                f"| {arm} | {len(per_epoch)} | {statistics.mean(per_epoch):.1f} "
                f"({min(per_epoch):.1f}-{max(per_epoch):.1f}) | {statistics.mean(minutes):.1f} |"
            )
    ends = [datetime.strptime(i["finished"], "%Y-%m-%d %H:%M:%S").timestamp() for i in infos]
    starts = [end - i["wall_time_s"] for end, i in zip(ends, infos, strict=True)]
    m = infos[0]["machine"]
    lines += [
        "",
        f"Benchmark span (first start to last finish, any pause between resumed sessions included): "
        f"{(max(ends) - min(starts)) / 60:.0f} min for {len(infos)} runs. Machine: {m['cpu']}, "
        f"{m['cores']} cores, {m['processes']} runs at a time x {m['threads_per_process']} intra-op "
        f"thread(s), bf16 autocast {'on' if m['bf16'] else 'off (fp32)'}, torch {m['torch']}, "
        f"GPU: {m['gpu']}.",
    ]
    return "\n".join(lines) + "\n"


def write_report(args: argparse.Namespace, title: str | None = None) -> None:
    """`neurogrow report` over the slim run copies; its report.md becomes `--report` (figures linked)."""
    results, report = args.results.resolve(), args.report.resolve()
    out = report.with_name(report.stem + "_report")
    cmd = [str(Path(sys.executable).with_name("neurogrow")), "report", str(results), "--out", str(out)]
    cmd += ["--by", "method", "--reference", "method=conventional"]
    title = title or f"Does neuron surgery help? CIFAR-10-LT IF=100, ResNet-32, {args.epochs} epochs"
    cmd += ["--title", title]
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    figures = sorted(p.name for p in out.glob("*.png"))
    text = (out / "report.md").read_text()
    text += "\nFigures: " + ", ".join(f"[{f}]({out.name}/{f})" for f in figures) + "\n" if figures else ""
    text += time_and_machine(results)
    reading = report.with_name(report.stem + "_reading.md")  # written by hand after looking at the numbers
    if reading.is_file():
        text += "\n" + reading.read_text()
    pairing = results / "pairing.json"
    if pairing.is_file():
        text += (
            f"\nPairing check (arms identical until the first event): {pairing.relative_to(report.parent)}\n"
        )
    report.write_text(text)
    print(f"wrote {report} (tables, CSVs and figures in {out})", flush=True)
    if args.commit:
        git_commit(
            [report, out, pairing], f"does_it_help: report over {args.seeds} seeds x {args.epochs} epochs"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--processes", type=int, default=2, help="runs trained at the same time")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per run (OMP_NUM_THREADS)")
    parser.add_argument("--limit-train-batches", type=int, default=None, help="quick checks only")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "does_it_help")
    parser.add_argument("--scratch", type=Path, default=REPO / "outputs" / "does_it_help")
    parser.add_argument("--report", type=Path, default=REPO / "benchmarks" / "results" / "does_it_help.md")
    parser.add_argument("--commit", action="store_true", help="git add + commit every finished run")
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument(
        "--surgery",
        action="append",
        metavar="OVERRIDE",
        help="a neurogrow-train override for the surgery arm only (a variant); repeat for more",
    )
    parser.add_argument("extra", nargs="*", help="further neurogrow-train overrides for both arms")
    args = parser.parse_args()
    if args.epochs < 1 or args.seeds < 1 or args.processes < 1 or args.threads < 1:
        parser.error("--epochs, --seeds, --processes and --threads must be >= 1")
    run_all(args)
    if not args.no_report:
        write_report(args)


if __name__ == "__main__":
    main()
