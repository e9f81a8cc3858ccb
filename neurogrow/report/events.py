"""Neuron counts and per-layer changes read from a run's `surgery_events.jsonl`."""

from __future__ import annotations

from pathlib import Path

from neurogrow.surgery.events import read_events

__all__ = ["layer_changes", "neuron_counts"]


def neuron_counts(path: str | Path) -> tuple[list[int], list[int]]:
    """(epoch of each event, active neurons over all groups after it)."""
    events = read_events(path)
    return [e["epoch"] for e in events], [e.get("neurons_total", 0) for e in events]


def layer_changes(path: str | Path) -> tuple[list[str], list[int], list[list[int]], list[list[int]]]:
    """(layer names, event epochs, added[layer][event], removed[layer][event]) in first-seen layer order."""
    events = read_events(path)
    layers: list[str] = []
    for e in events:
        for g in e.get("groups", []):
            if g["name"] not in layers:
                layers.append(g["name"])
    index = {name: i for i, name in enumerate(layers)}
    added = [[0] * len(events) for _ in layers]
    removed = [[0] * len(events) for _ in layers]
    for j, e in enumerate(events):
        for g in e.get("groups", []):
            added[index[g["name"]]][j] = g.get("n_added", len(g.get("added", [])))
            removed[index[g["name"]]][j] = g.get("n_removed", len(g.get("removed", [])))
    return layers, [e["epoch"] for e in events], added, removed
