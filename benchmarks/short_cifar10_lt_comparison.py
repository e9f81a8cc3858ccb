"""A short CPU comparison on CIFAR-10-LT (IF=100): baseline vs neuron surgery, same everything else.

Both runs use the same recipe (ResNet-32, SGD lr 0.1, cosine over --epochs, batch 128, seed 0); the
baseline is conventional training (no surgery group), so the runs differ only in the neuron
modification. Events come after epochs 3, 6, 9, ... (0-indexed start_epoch=2).
This is far shorter than the paper's 150 epochs (a CPU budget), so it shows that the method runs and what
it does early in training, not the paper's final numbers. The test set is only read once, at the end.

    python benchmarks/short_cifar10_lt_comparison.py [--epochs 12] [--out benchmarks/results/...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def run(name: str, epochs: int, nam: bool, out_root: Path) -> dict:
    run_dir = out_root / name
    args = [
        sys.executable,
        "-m",
        "neurogrow.cli.train",
        "experiment=cifar10_lt_ce",
        "scheduler=cosine",
        "scheduler.warmup_epochs=1",
        f"trainer.max_epochs={epochs}",
        "trainer.accelerator=cpu",
        "trainer.limit_val_batches=0",
        "logger=csv",
        *(
            (
                "surgery=default",
                "callbacks.surgery.schedule.start_epoch=2",
                "callbacks.surgery.schedule.interval=3",
                # events at epochs 2, 5, ... up to epochs - 2
                f"callbacks.surgery.schedule.num_events={(epochs - 4) // 3 + 1}",
            )
            if nam
            else ()
        ),
        "data.eval_batch_size=500",
        f"hydra.run.dir={run_dir}",
        f"task_name=short_comparison_{name}",
    ]
    start = time.perf_counter()
    subprocess.run(args, cwd=REPO, check=True, env={**os.environ, "WANDB_SILENT": "true"})
    metrics = json.loads((run_dir / "metrics.json").read_text())
    events = (run_dir / "surgery_events.jsonl").read_text().splitlines() if nam else []
    return {
        "name": name,
        "minutes": (time.perf_counter() - start) / 60,
        "events": len(events) - 1 if events else 0,
        **metrics,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--runs-dir", type=Path, default=REPO / "outputs" / "short_comparison")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "short_cifar10_lt_comparison.md"
    )
    args = parser.parse_args()
    rows = [
        run("baseline", args.epochs, False, args.runs_dir),
        run("surgery", args.epochs, True, args.runs_dir),
    ]
    lines = [
        f"# CIFAR-10-LT (IF=100, offline JPEG copy), ResNet-32, {args.epochs} epochs, CPU",
        "",
        f"`python benchmarks/short_cifar10_lt_comparison.py --epochs {args.epochs}` on {cpu_name()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}; one seed (0), so differences of a point or two",
        "are within run-to-run noise.",
        "",
        "| run | surgery events | overall | Many | Medium | Few | balanced | minutes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = [
            f"{100 * r[k]:.2f}" if k in r else "-"
            for k in ("test/acc", "test/acc_many", "test/acc_medium", "test/acc_few", "test/balanced_acc")
        ]
        lines.append(f"| {r['name']} | {r['events']} | " + " | ".join(cells) + f" | {r['minutes']:.1f} |")
    lines += ["", "Per-class test accuracy (classes largest first):", ""]
    for r in rows:
        lines.append(f"- {r['name']}: " + ", ".join(f"{100 * a:.1f}" for a in r["test/acc_per_class"]))
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
