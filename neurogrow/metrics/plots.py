"""Per-class accuracy bar chart, classes ordered by training-set size (head left, tail right)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from neurogrow.metrics.shot_accuracy import shot_groups

_GROUP_COLOURS = {"many": "tab:blue", "medium": "tab:orange", "few": "tab:red"}


def plot_per_class_accuracy(
    per_class_acc: Sequence[float],
    class_counts: Sequence[int],
    path: Path,
    class_names: Sequence[str] | None = None,
    title: str = "Per-class test accuracy",
    shot_thresholds: dict | None = None,
) -> Path:
    """Write a PNG bar chart of per-class accuracy coloured by shot group, counts on a second axis.

    `shot_thresholds`: keyword arguments of `shot_groups` (the run's ``metrics`` config); classes that
    were not evaluated (NaN accuracy) get no bar.
    """
    order = sorted(range(len(class_counts)), key=lambda c: -class_counts[c])
    groups = shot_groups(class_counts, **(shot_thresholds or {}))
    colour = {c: col for g, col in _GROUP_COLOURS.items() for c in groups[g].nonzero().flatten().tolist()}
    width = max(6.0, min(24.0, 0.25 * len(order)))
    fig, ax = plt.subplots(figsize=(width, 4))
    ax.bar(range(len(order)), [100 * per_class_acc[c] for c in order], color=[colour[c] for c in order])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_xlabel("class (sorted by training images)")
    if class_names is not None and len(order) <= 30:
        ax.set_xticks(range(len(order)), [class_names[c] for c in order], rotation=45, ha="right")
    counts_ax = ax.twinx()
    counts_ax.plot(range(len(order)), [class_counts[c] for c in order], color="black", marker=".", lw=1)
    counts_ax.set_yscale("log")
    counts_ax.set_ylabel("training images")
    handles = [
        plt.Rectangle((0, 0), 1, 1, color=c) for g, c in _GROUP_COLOURS.items() if bool(groups[g].any())
    ]
    labels = [g.capitalize() for g in _GROUP_COLOURS if bool(groups[g].any())]
    ax.legend(handles, labels, loc="upper right")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
