"""`neurogrow report`: run directories in, Markdown + CSV tables and PNG figures out.

The notebooks in `notebooks/` and the end-of-sweep Hydra callback use these same functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from neurogrow.errors import UserError
from neurogrow.report.collect import Run, collect_runs, load_run
from neurogrow.report.events import layer_changes, neuron_counts
from neurogrow.report.figures import plot_accuracy_vs_ratio, plot_neuron_counts, plot_per_class, write_figures
from neurogrow.report.render import groups_csv, runs_csv, to_markdown
from neurogrow.report.table import METRICS, Report, build_report, parse_reference

__all__ = [
    "METRICS",
    "Report",
    "Run",
    "build_report",
    "collect_runs",
    "layer_changes",
    "load_run",
    "make_report",
    "neuron_counts",
    "parse_reference",
    "plot_accuracy_vs_ratio",
    "plot_neuron_counts",
    "plot_per_class",
    "write_report",
]


def write_report(report: Report, out_dir: Path, title: str = "neurogrow report") -> dict[str, Any]:
    """`report.md`, `groups.csv`, `runs.csv` and the figures into `out_dir`; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(report, title=title)
    (out_dir / "report.md").write_text(markdown)
    return {
        "markdown": out_dir / "report.md",
        "groups_csv": groups_csv(report, out_dir / "groups.csv"),
        "runs_csv": runs_csv(report, out_dir / "runs.csv"),
        "figures": write_figures(report, out_dir),
        "text": markdown,
    }


def make_report(
    paths: Iterable[str | Path],
    out_dir: str | Path | None = None,
    by: Sequence[str] | None = None,
    reference: str | dict[str, Any] | None = None,
    title: str = "neurogrow report",
) -> tuple[Report, dict[str, Any] | None]:
    """Collect, group and (when `out_dir` is given) write; raises ValueError with a one-line fix."""
    runs = collect_runs(paths)
    if not runs:
        raise UserError("no run directories (folders with config.yaml) found under the given paths")
    ref = parse_reference(reference) if isinstance(reference, str) else reference
    report = build_report(runs, by=by, reference=ref)
    written = write_report(report, Path(out_dir), title=title) if out_dir is not None else None
    return report, written
