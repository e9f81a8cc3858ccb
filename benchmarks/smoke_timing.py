"""Wall time of `neurogrow-train experiment=smoke` (goal: under 60 s on 2 CPU cores once installed).

Runs the real console entry point as a user would (default logger: offline wandb), after one untimed
run that builds the data cache, and records each timed run.

    python benchmarks/smoke_timing.py [--repeats 2] [--out benchmarks/results/smoke_timing.txt]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def timed_run(run_dir: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "neurogrow.cli.train", "experiment=smoke", f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        check=True,
        capture_output=True,
        env={**os.environ, "WANDB_SILENT": "true"},
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "smoke_timing.txt")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        timed_run(Path(tmp) / "warmup")  # builds the uint8 cache if missing
        times = [timed_run(Path(tmp) / f"run{i}") for i in range(args.repeats)]
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    text = (
        "neurogrow-train experiment=smoke (CIFAR-10-LT IF=100, ResNet-32, 2x4 training batches, full test)\n"
        f"machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
        f"wall seconds per run (process start to exit, incl. imports and offline wandb): "
        f"{', '.join(f'{t:.1f}' for t in times)}\n"
        f"goal < 60 s: {'PASS' if max(times) < 60 else 'FAIL'}\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
