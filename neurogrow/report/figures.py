"""The report's PNG figures: accuracy vs modification ratio, per-class accuracy, neuron counts."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from neurogrow.report.collect import Run
from neurogrow.report.events import layer_changes, neuron_counts
from neurogrow.report.table import Group, Report, summarise

__all__ = ["plot_accuracy_vs_ratio", "plot_neuron_counts", "plot_per_class", "write_figures"]

RATIO_KEYS = ("callbacks.surgery.ratio",)


def _ratio(run: Run) -> float | None:
    for key in RATIO_KEYS:
        if key in run.config:
            return float(run.config[key])
    return None


def plot_accuracy_vs_ratio(runs: Sequence[Run]) -> Figure | None:
    """Overall accuracy (mean ± std over seeds) against the ratio, one line per backbone; conventional
    runs of the same backbone are drawn as a dashed line. None when no run has a ratio."""
    runs = [r for r in runs if r.finished]
    if not any(_ratio(r) is not None for r in runs):
        return None
    by_backbone: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    baseline: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        backbone = str(r.config.get("model.backbone", "model"))
        acc = 100 * r.metrics["test/acc"]
        ratio = _ratio(r)
        if r.config.get("method") == "conventional":
            baseline[backbone].append(acc)
        elif ratio is not None:
            by_backbone[backbone][ratio].append(acc)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (backbone, points) in enumerate(sorted(by_backbone.items())):
        xs = sorted(points)
        s = [summarise(points[x]) for x in xs]
        colour = f"C{i}"
        ax.errorbar(
            xs,
            [p.mean for p in s],
            yerr=[0 if math.isnan(p.std) else p.std for p in s],
            marker="o",
            capsize=3,
            color=colour,
            label=f"{backbone} surgery",
        )
        if baseline.get(backbone):
            ax.axhline(
                summarise(baseline[backbone]).mean, ls="--", color=colour, label=f"{backbone} conventional"
            )
    ax.set_xlabel("modification ratio r")
    ax.set_ylabel("overall test accuracy (%)")
    ax.set_title("Accuracy vs modification ratio")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_per_class(groups: Sequence[Group], max_groups: int = 8) -> Figure | None:
    """Per-class accuracy (mean over seeds) with classes ordered by training images, one line per group."""
    drawn = [g for g in groups if g.runs[0].class_counts and "test/acc_per_class" in g.runs[0].metrics]
    if not drawn:
        return None
    fig, ax = plt.subplots(figsize=(8, 4))
    counts = drawn[0].runs[0].class_counts
    order = sorted(range(len(counts)), key=lambda c: -counts[c])
    for g in drawn[:max_groups]:
        per_class = [r.metrics["test/acc_per_class"] for r in g.runs if "test/acc_per_class" in r.metrics]
        mean = [100 * sum(pc[c] for pc in per_class) / len(per_class) for c in order]
        ax.plot(range(len(order)), mean, marker=".", label=f"{g.label()} (n={len(per_class)})")
    ax.set_xlabel("class, ordered by training images (head → tail)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    counts_ax = ax.twinx()
    counts_ax.bar(range(len(order)), [counts[c] for c in order], color="grey", alpha=0.2)
    counts_ax.set_yscale("log")
    counts_ax.set_ylabel("training images")
    ax.set_zorder(counts_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.legend(fontsize=7)
    ax.set_title("Per-class accuracy")
    fig.tight_layout()
    return fig


def plot_neuron_counts(runs: Sequence[Run]) -> Figure | None:
    """Left: active neurons after each event per run; right: neurons added/removed per layer and event
    for the first run with events. None when no run has a surgery event log."""
    logged = [r for r in runs if r.events_path.is_file()]
    if not logged:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 1.4]})
    for r in logged:
        epochs, totals = neuron_counts(r.events_path)
        left.plot(epochs, totals, marker="o", label="/".join(r.path.parts[-2:]))
    left.set_xlabel("epoch")
    left.set_ylabel("active neurons (all groups)")
    left.set_title("Neuron count over training")
    if len(logged) <= 10:
        left.legend(fontsize=7)
    layers, events, added, removed = layer_changes(logged[0].events_path)
    if layers:
        width = 0.4
        ys = range(len(layers))
        right.barh([y - width / 2 for y in ys], [sum(row) for row in added], height=width, label="added")
        right.barh([y + width / 2 for y in ys], [-sum(row) for row in removed], height=width, label="removed")
        right.set_yticks(list(ys), layers, fontsize=6)
        right.invert_yaxis()
        right.set_xlabel(f"neurons over {len(events)} event(s)")
        right.set_title(f"Per-layer changes ({'/'.join(logged[0].path.parts[-2:])})")
        right.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_figures(report: Report, out_dir: Path) -> list[Path]:
    """Write every figure the runs allow into `out_dir`; returns the files written."""
    runs = [r for g in report.groups for r in g.runs]
    written = []
    for name, fig in (
        ("accuracy_vs_ratio.png", plot_accuracy_vs_ratio(runs)),
        ("per_class_accuracy.png", plot_per_class(report.groups)),
        ("neuron_counts.png", plot_neuron_counts(runs)),
    ):
        if fig is None:
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        written.append(out_dir / name)
    return written
