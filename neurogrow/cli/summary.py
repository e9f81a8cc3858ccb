"""The end-of-run table: overall, Many, Medium and Few accuracy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

_COLUMNS = (
    ("Overall", "test/acc"),
    ("Many", "test/acc_many"),
    ("Medium", "test/acc_medium"),
    ("Few", "test/acc_few"),
    ("Balanced", "test/balanced_acc"),
)


def print_summary(metrics: Mapping[str, Any], title: str = "test accuracy") -> Table:
    """Print accuracies in percent; a shot group with no classes shows as "-"."""
    table = Table(title=title)
    for name, _ in _COLUMNS:
        table.add_column(name, justify="right")
    table.add_row(*(f"{100 * metrics[key]:.2f}" if key in metrics else "-" for _, key in _COLUMNS))
    Console().print(table)
    return table
