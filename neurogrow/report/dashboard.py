"""A rendering of the lab's wandb dashboard (docs/wandb.md) from offline runs, without a wandb server."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from neurogrow.report.wandb_offline import OfflineRun, read_offline_run

__all__ = ["render_dashboard"]

_PANELS = (
    ("val/acc", "val/acc (overall)"),
    ("val/acc_many", "val/acc_many"),
    ("val/acc_medium", "val/acc_medium"),
    ("val/acc_few", "val/acc_few"),
    ("train/loss_epoch", "train/loss (epoch)"),
    ("surgery/neurons_total", "surgery/neurons_total"),
)


def _series(run: OfflineRun, key: str) -> tuple[list[float], list[float]]:
    """(epoch, value) pairs; rows logged without an epoch (surgery events) take the last epoch seen."""
    xs, ys, epoch = [], [], 0.0
    for row in run.history:
        epoch = float(row.get("epoch", epoch))
        if key in row:
            xs.append(epoch)
            ys.append(float(row[key]))
    return xs, ys


def render_dashboard(run_dirs: Sequence[str | Path], path: str | Path) -> Path:
    """Line panels against epoch (one line per run, labelled by its wandb name) and the run table's
    final test accuracies as bars: the layout docs/wandb.md recommends."""
    runs = [read_offline_run(d) for d in run_dirs]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, (key, title) in zip(axes.flat, _PANELS):
        for run in runs:
            xs, ys = _series(run, key)
            if xs:
                ax.plot(xs, ys, marker="o", label=run.name)
        ax.set_title(title, fontsize=10)
        if not ax.lines:
            note = "not logged (e.g. no Few classes)"
            ax.text(0.5, 0.5, note, ha="center", transform=ax.transAxes, fontsize=8)
        ax.set_xlabel("epoch")
    axes.flat[0].legend(fontsize=7)
    table = axes.flat[6]
    keys = ["test/acc", "test/acc_many", "test/acc_medium", "test/acc_few"]
    width = 0.8 / max(len(runs), 1)
    for i, run in enumerate(runs):
        values = [100 * float(run.summary.get(k, 0.0)) for k in keys]
        table.bar([j + i * width for j in range(len(keys))], values, width=width, label=run.name)
    table.set_xticks([j + 0.4 - width / 2 for j in range(len(keys))], ["overall", "many", "medium", "few"])
    table.set_title("run summary: final test accuracy (%)", fontsize=10)
    tags = axes.flat[7]
    tags.axis("off")
    text = "\n\n".join(f"{r.name}\ngroup: {r.group}\ntags: {', '.join(r.tags)}" for r in runs)
    tags.text(0, 1, text, va="top", fontsize=7, wrap=True)
    tags.set_title("runs table: name, group, tags", fontsize=10)
    fig.suptitle("neurogrow wandb dashboard (rendered from offline runs)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
