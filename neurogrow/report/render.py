"""Write a report as Markdown (for people) and CSV (for spreadsheets and pandas)."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

from neurogrow.report.collect import Run
from neurogrow.report.paper import PAPER_RESULTS
from neurogrow.report.table import METRICS, Difference, Group, Report, Summary, format_value

__all__ = ["groups_csv", "runs_csv", "to_markdown"]


def _pct(s: Summary | None) -> str:
    if s is None:
        return "-"
    return f"{s.mean:.2f}" if math.isnan(s.std) else f"{s.mean:.2f} ± {s.std:.2f}"


def _diff(d: Difference | None) -> str:
    if d is None:
        return "-"
    text = f"{d.mean:+.2f}"
    if d.low is not None:
        text += f" [{d.low:+.2f}, {d.high:+.2f}]"
    elif d.n_pairs == 0:
        text += " (unpaired)"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def _common_root(runs: Sequence[Run]) -> Path | None:
    if not runs:
        return None
    return Path(os.path.commonpath([str(r.path.resolve()) for r in runs]))


def _relative(run: Run, root: Path | None) -> str:
    if root is None:
        return str(run.path)
    rel = os.path.relpath(run.path.resolve(), root)
    return str(run.path) if rel == "." else rel


def _info_keys(runs: Sequence[Run]) -> list[str]:
    """Numeric top-level fields of run.json (wall time, seconds per epoch, ...), in first-seen order."""
    keys: list[str] = []
    for r in runs:
        for k, v in r.info.items():
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in keys and k != "seed":
                keys.append(k)
    return keys


def to_markdown(report: Report, title: str = "neurogrow report") -> str:
    """The summary table, the differences to the reference, every run, and the runs left out."""
    cols = [report.labels[k] for k in report.keys]
    names = [m[0] for m in METRICS if any(m[0] in g.stats for g in report.groups)]
    paper_names = [n for n in names if any(n in g.paper for g in report.groups)]
    lines = [f"# {title}", ""]
    n_runs = sum(len(g.runs) for g in report.groups)
    lines.append(
        f"{n_runs} finished run(s) in {len(report.groups)} group(s); accuracy in % (mean ± std over seeds)."
    )
    if report.keys:
        lines.append("Grouped by: " + ", ".join(f"`{k}`" for k in report.keys) + ".")
    lines.append("")
    header = [*cols, "n", *names, *(f"paper {n}" for n in paper_names)]
    rows = []
    for g in report.groups:
        rows.append(
            [
                *(format_value(g.key[k]) for k in report.keys),
                str(len(g.runs)),
                *(_pct(g.stats.get(n)) for n in names),
                *(f"{g.paper[n]:.1f}" if n in g.paper else "-" for n in paper_names),
            ]
        )
    lines += _table(header, rows)
    if any(report.groups) and paper_names:
        lines += [
            "",
            f"Paper values from `{PAPER_RESULTS.name}` (Sakai & Hotta 2025; '-' = not known to us).",
        ]
    if report.reference:
        ref_text = ", ".join(f"{k}={format_value(v)}" for k, v in report.reference.items())
        lines += ["", f"## Difference to the reference ({ref_text})", ""]
        lines.append(
            "Points, group minus its reference (same other settings); [95 % Student-t interval] of "
            "the differences paired by seed, n = number of pairs."
        )
        lines.append("")
        compared = [g for g in report.groups if g.reference is not None]
        rows = [
            [g.label(), str(max((d.n_pairs for d in g.differences.values() if d), default=0))]
            + [_diff(g.differences.get(n)) for n in names]
            for g in compared
        ]
        lines += (
            _table(["group", "n pairs", *(f"Δ {n}" for n in names)], rows)
            if rows
            else ["(no group to compare)"]
        )
    all_runs = [r for g in report.groups for r in g.runs]
    root = _common_root(all_runs + report.incomplete)
    info = _info_keys(all_runs)
    lines += ["", "## Runs", ""]
    rows = []
    for g in report.groups:
        for r in sorted(g.runs, key=lambda r: repr(r.seed)):
            rows.append(
                [
                    _relative(r, root),
                    g.label(),
                    format_value(r.seed),
                    *(_single(r, key) for name, key, _ in METRICS if name in names),
                    *(f"{r.info[k]:.4g}" if k in r.info else "-" for k in info),
                    *([_paired(r, g)] if report.reference else []),
                ]
            )
    paired = ["Δ overall vs same seed of reference"] if report.reference else []
    lines += _table(["run", "group", "seed", *names, *info, *paired], rows)
    if report.incomplete:
        lines += ["", "## Failed or unfinished runs (not in the tables above)", ""]
        lines += _table(
            ["run", "status", "reason"],
            [[_relative(r, root), r.status, r.error or "no metrics.json yet"] for r in report.incomplete],
        )
    return "\n".join(lines) + "\n"


def _paired(run: Run, group: Group) -> str:
    """This run's overall accuracy minus that of the reference run with the same seed."""
    if group.reference is None:
        return "-"
    partner = [r for r in group.reference.runs if repr(r.seed) == repr(run.seed)]
    if len(partner) != 1:
        return "-"
    return f"{100 * (run.metrics['test/acc'] - partner[0].metrics['test/acc']):+.2f}"


def _single(run: Run, key: str) -> str:
    value = (run.metrics or {}).get(key)
    return f"{100 * value:.2f}" if isinstance(value, int | float) else "-"


def groups_csv(report: Report, path: Path) -> Path:
    """One row per group: keys, n, seeds, mean/std per metric, paper values, differences and intervals."""
    header = [*report.keys, "n", "seeds"]
    for name, _, _ in METRICS:
        header += [f"{name}_mean", f"{name}_std", f"paper_{name}"]
    for name, _, _ in METRICS:
        header += [f"diff_{name}", f"diff_{name}_low", f"diff_{name}_high", f"diff_{name}_pairs"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for g in report.groups:
            row = [format_value(g.key[k]) for k in report.keys]
            row += [len(g.runs), " ".join(format_value(s) for s in sorted(g.seeds, key=repr))]
            for name, _, _ in METRICS:
                s = g.stats.get(name)
                row += [_num(s.mean if s else None), _num(s.std if s else None), _num(g.paper.get(name))]
            for name, _, _ in METRICS:
                d = g.differences.get(name)
                row += [_num(d.mean if d else None), _num(d.low if d else None)]
                row += [_num(d.high if d else None), d.n_pairs if d else ""]
            w.writerow(row)
    return path


def runs_csv(report: Report, path: Path) -> Path:
    """One row per run, incomplete ones included with their status."""
    runs = [r for g in report.groups for r in g.runs] + report.incomplete
    info = _info_keys(runs)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "status", *report.keys, "seed", *(m[0] for m in METRICS), *info, "error"])
        for r in runs:
            row = [str(r.path), r.status, *(format_value(r.config.get(k, "-")) for k in report.keys)]
            row += [format_value(r.seed)]
            row += [
                _num(100 * v) if isinstance(v := (r.metrics or {}).get(key), int | float) else ""
                for _, key, _ in METRICS
            ]
            row += [r.info.get(k, "") for k in info] + [r.error or ""]
            w.writerow(row)
    return path


def _num(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
