"""Start-up time of the command line: `import neurogrow`, `neurogrow --help`, `neurogrow-train --help`.

Goal: each `--help` under 2 s on an idle machine. Every command runs as a fresh process (as a user starts
it), `--repeats` times after one untimed warm-up; the median wall time and the median CPU time (user +
system of the child, the operating system's accounting) are recorded. On a loaded machine the wall time
grows with the load while the CPU time stays close to what an idle machine's wall time would be, so both
are written, with the load average. For comparison it also times importing the model stack (timm and
Lightning), which `import neurogrow` used to do eagerly.

    python benchmarks/cli_startup.py [--repeats 5] [--out benchmarks/results/cli_startup.txt]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

COMMANDS = {
    "python -c 'import neurogrow'": [sys.executable, "-c", "import neurogrow"],
    "neurogrow --help": [str(BIN / "neurogrow"), "--help"],
    "neurogrow-train --help": [str(BIN / "neurogrow-train"), "--help"],
    "python -c 'import neurogrow.models' (timm + Lightning, for comparison)": [
        sys.executable,
        "-c",
        "import neurogrow.models",
    ],
}
GOAL_S = 2.0


def _run_once(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, load average {load}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cli_startup.txt")
    args = parser.parse_args()

    lines = [
        f"CLI start-up (fresh process each run; median of {args.repeats} after 1 warm-up)",
        f"machine: {_machine()}",
        "",
        f"{'command':<75} {'wall s':>8} {'cpu s':>8}",
    ]
    verdicts = []
    for name, cmd in COMMANDS.items():
        _run_once(cmd)  # warm-up: file-system caches, .pyc files
        runs = [_run_once(cmd) for _ in range(args.repeats)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        lines.append(f"{name:<75} {wall:8.2f} {cpu:8.2f}")
        print(lines[-1], flush=True)
        if name.endswith("--help"):
            verdicts.append(
                f"{name}: cpu {cpu:.2f} s -> {'PASS' if cpu < GOAL_S else 'FAIL'} (goal < {GOAL_S} s)"
            )
    lines += ["", *verdicts, f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-len(verdicts) - 1 :]))


if __name__ == "__main__":
    main()
