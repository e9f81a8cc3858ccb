"""Same surgery decisions before and after the issue-9 redesign of the surgery options.

Runs the same short CLI run twice: on the code before the redesign (commit 4da0360, checked out with
`git worktree add` into /tmp and run with this venv's python, PYTHONPATH pointing at it) with the old
command line, and on this tree with the new names; then compares the decisions (sources, targets and
removed indices of every group, per event) in both `surgery_events.jsonl`. Prints IDENTICAL or the
differences, and writes the report to benchmarks/results/surgery_redesign_equivalence.txt.

    python benchmarks/surgery_redesign_equivalence.py [NEW_COMMIT]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OLD_COMMIT = "4da0360"
RESULT = REPO / "benchmarks" / "results" / "surgery_redesign_equivalence.txt"

COMMON = ("experiment=smoke", "logger=csv", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1")
# Events at the end of epochs 0 and 1 (smoke trains 2 epochs of 4 batches), the paper's method otherwise.
OLD = ("callbacks=surgery", "callbacks.surgery.start_epoch=0", "callbacks.surgery.interval=1",
       "callbacks.surgery.last_epoch=1")  # fmt: skip
NEW = ("surgery=default", "callbacks.surgery.schedule.start_epoch=0", "callbacks.surgery.schedule.interval=1",
       "callbacks.surgery.schedule.num_events=2")  # fmt: skip


def tree(commit: str) -> Path:
    """A detached `git worktree` of `commit` in /tmp (made once)."""
    path = Path(tempfile.gettempdir()) / f"neurogrow-{commit}"
    if not (path / "neurogrow").is_dir():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=REPO, check=True)
    return path


def run(code: Path, overrides: tuple[str, ...], run_dir: Path) -> list[dict]:
    """One `python -m neurogrow.cli.train` run of the tree at `code` (started there, so that `-m` imports
    that tree), with this repository's data/ (NEUROGROW_ROOT)."""
    env = {**os.environ, "PYTHONPATH": str(code), "NEUROGROW_ROOT": str(REPO), "WANDB_MODE": "disabled"}
    cmd = [sys.executable, "-m", "neurogrow.cli.train", *COMMON, *overrides, f"hydra.run.dir={run_dir}"]
    check = [sys.executable, "-c", "import neurogrow, sys; print(neurogrow.__file__)"]
    where = subprocess.run(check, env=env, cwd=code, capture_output=True, text=True, check=True).stdout
    if not where.startswith(str(code)):
        raise SystemExit(f"PYTHONPATH={code} did not win: neurogrow imported from {where.strip()}")
    subprocess.run(cmd, env=env, cwd=code, check=True, stdout=subprocess.DEVNULL)
    lines = (run_dir / "surgery_events.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("type") == "event"]


def decisions(events: list[dict]) -> list[dict]:
    keys = ("name", "sources", "added", "removed")
    return [
        {"epoch": e["epoch"], "phase": e["phase"], "groups": [{k: g[k] for k in keys} for g in e["groups"]]}
        for e in events
    ]


def compare(old: list[dict], new: list[dict]) -> list[str]:
    diffs = []
    if len(old) != len(new):
        diffs.append(f"event count: old {len(old)}, new {len(new)}")
    for i, (a, b) in enumerate(zip(old, new)):
        if (a["epoch"], a["phase"]) != (b["epoch"], b["phase"]):
            diffs.append(f"event {i}: old at {a['epoch']}/{a['phase']}, new at {b['epoch']}/{b['phase']}")
        if [g["name"] for g in a["groups"]] != [g["name"] for g in b["groups"]]:
            diffs.append(f"event {i}: different groups")
            continue
        for ga, gb in zip(a["groups"], b["groups"]):
            for key in ("sources", "added", "removed"):
                if ga[key] != gb[key]:
                    diffs.append(f"event {i} group {ga['name']} {key}: old {ga[key]}, new {gb[key]}")
    return diffs


def main(argv: list[str]) -> int:
    """`argv`: optionally the commit of the new code (default: this working tree)."""
    new_code = tree(argv[0]) if argv else REPO
    with tempfile.TemporaryDirectory() as tmp:
        old = decisions(run(tree(OLD_COMMIT), OLD, Path(tmp) / "old"))
        new = decisions(run(new_code, NEW, Path(tmp) / "new"))
    diffs = compare(old, new)
    n_groups = sum(len(e["groups"]) for e in new)
    n_idx = sum(len(g["sources"]) + len(g["removed"]) for e in new for g in e["groups"])
    lines = [
        "Surgery decisions before (commit 4da0360) and after the issue-9 redesign of the options",
        f"old: neurogrow-train {' '.join(COMMON + OLD)}",
        f"new: neurogrow-train {' '.join(COMMON + NEW)}" + (f"  (commit {argv[0]})" if argv else ""),
        f"compared: {len(new)} events, {n_groups} group decisions, {n_idx} indices (sources, removed)",
        "IDENTICAL" if not diffs else "DIFFERENT:",
        *diffs,
    ]
    report = "\n".join(lines) + "\n"
    print(report, end="")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(report)
    return 0 if not diffs else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
