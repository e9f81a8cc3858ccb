"""Why surgery does or does not help: diagnostics of surgery runs from their event logs and final checkpoints.

Reads only `surgery_events.jsonl` and `checkpoints/last.ckpt` of each run directory (no test data), so it
can guide a follow-up without tuning on the test set. Three questions from the does-it-help issue:

- Selection: does the accumulated gradient single neurons out? Per event, the layers' score spread
  (`score_max / score_mean` and `score_min / score_mean`, median over layers; a spread near 1 means the
  chosen neurons barely differ from the rest, and selection is close to `criterion=random`).
- Churn: does the next event undo this one? The share of the neurons added at event e that event e+1
  removes again, and the share it picks as sources, against random selection's expectation k/n.
- Divergence: do split copies become different neurons? At the end of training, the cosine similarity and
  relative distance of each new neuron's incoming weights to its source's (per event, the pairs no later
  event overwrote; cos 1 / distance 0 = still a copy), against the median |cos| of all neuron pairs in
  the same layers.

    python benchmarks/surgery_diagnostics.py outputs/does_it_help/surgery_seed*   # -> benchmarks/results/...
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path

import torch

from neurogrow.surgery.events import read_events

REPO = Path(__file__).resolve().parents[1]


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def score_spread(event: dict) -> tuple[float, float]:
    """Median over the event's layers of score_max / score_mean and score_min / score_mean."""
    ups, downs = [], []
    for group in event["groups"]:
        mean = group.get("score_mean")
        if mean and mean == mean and mean > 0:
            ups.append(group["score_max"] / mean)
            downs.append(group["score_min"] / mean)
    return _median(ups), _median(downs)


def churn(previous: dict, current: dict) -> dict[str, float]:
    """Of the neurons `previous` added: the share `current` removes, the share it splits, and random
    selection's expectation for either (k / n, per layer, weighted by the number added)."""
    before = {g["name"]: g for g in previous["groups"]}
    added = removed = split = expected = 0.0
    for group in current["groups"]:
        old = before.get(group["name"])
        if old is None or not old["added"]:
            continue
        new_slots = set(old["added"])
        added += len(new_slots)
        removed += len(new_slots & set(group["removed"]))
        split += len(new_slots & set(group["sources"]))
        expected += len(new_slots) * group["n_removed"] / group["size"]
    if not added:
        return {}
    return {
        "removed_again": removed / added,
        "split_again": split / added,
        "random_expectation": expected / added,
    }


def _weight(state: dict[str, torch.Tensor], name: str, size: int) -> torch.Tensor | None:
    """The incoming weight rows of group `name` (one row per neuron), or None where they are not one
    tensor with `size` rows (fused attention projections: left out)."""
    keys = [k for k in state if k == f"{name}.weight" or k.endswith(f".{name}.weight")]
    if not keys:
        return None
    weight = state[min(keys, key=len)]
    return weight.flatten(1).float() if weight.dim() >= 2 and weight.shape[0] == size else None


def divergence(events: list[dict], state: dict[str, torch.Tensor]) -> list[dict[str, float]]:
    """Per event, its (new neuron, source) pairs that no later event overwrote, compared at the end of
    training: cosine similarity and relative distance ||new - source|| / ||source|| of their incoming
    weights, and the median |cos| of all neuron pairs in those layers (what unrelated neurons look like)."""
    rows_of: dict[str, torch.Tensor] = {}
    for group in events[-1]["groups"]:
        rows = _weight(state, group["name"], group["size"])
        if rows is not None:
            rows_of[group["name"]] = rows
    out = []
    for e, event in enumerate(events):
        cosines, distances, background = [], [], []
        for group in event["groups"]:
            rows = rows_of.get(group["name"])
            if rows is None or not group["added"]:
                continue
            later = {
                i
                for ev in events[e + 1 :]
                for g in ev["groups"]
                if g["name"] == group["name"]
                for i in g["removed"]
            }
            unit = torch.nn.functional.normalize(rows, dim=1)
            cos = unit @ unit.T
            background.append(cos[~torch.eye(len(cos), dtype=torch.bool)].abs().median().item())
            for slot, source in zip(group["added"], group["sources"], strict=True):
                if slot in later or source in later:
                    continue
                cosines.append(cos[slot, source].item())
                distances.append(((rows[slot] - rows[source]).norm() / rows[source].norm()).item())
        out.append(
            {
                "event": event["event"],
                "epoch": event["epoch"],
                "pairs": len(cosines),
                "cos_median": _median(cosines),
                "cos_min": min(cosines, default=float("nan")),
                "distance_median": _median(distances),
                "share_cos_above_0.9": sum(c > 0.9 for c in cosines) / len(cosines)
                if cosines
                else float("nan"),
                "layer_abs_cos_median": _median(background),
            }
        )
    return out


def diagnose(run: Path) -> dict[str, object]:
    events = read_events(run)
    if not events:
        return {"run": run.name, "events": []}
    rows = []
    for i, event in enumerate(events):
        up, down = score_spread(event)
        row = {
            "event": event["event"],
            "epoch": event["epoch"],
            "moved": event["added"],
            "up": up,
            "down": down,
        }
        row.update(churn(events[i - 1], event) if i else {})
        rows.append(row)
    out: dict[str, object] = {"run": run.name, "events": rows}
    ckpt = run / "checkpoints" / "last.ckpt"
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        out["divergence"] = divergence(events, state)
    return out


def render(results: list[dict[str, object]]) -> str:
    lines = [
        "# Surgery diagnostics",
        "",
        "Generated by `benchmarks/surgery_diagnostics.py` (event logs and final "
        "checkpoints only; no test data).",
        "",
    ]
    lines += ["## Selection and churn per event", ""]
    lines += [
        "| run | event | epoch | neurons moved | max/mean score | min/mean score | added at e-1 removed "
        "again | split again | random expectation |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for r in res["events"]:
            again = [
                f"{r[k]:.3f}" if k in r else "-"
                for k in ("removed_again", "split_again", "random_expectation")
            ]
            cells = [
                res["run"],
                r["event"],
                r["epoch"],
                r["moved"],
                f"{r['up']:.2f}",
                f"{r['down']:.2f}",
                *again,
            ]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += ["", "## Divergence of split copies from their sources at the end of training", ""]
    lines += [
        "Pairs of each event that no later event overwrote; 1 / 0 = the copy is still its source. Unrelated "
        "neurons of the same layers: median |cos| in the last column.",
        "",
        "| run | event | epoch | pairs | median cos(new, source) | min cos | median relative distance "
        "| share cos > 0.9 | median abs cos, all pairs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for d in res.get("divergence", []):
            cells = [
                res["run"],
                d["event"],
                d["epoch"],
                d["pairs"],
                f"{d['cos_median']:.4f}",
                f"{d['cos_min']:.4f}",
            ]
            cells += [
                f"{d['distance_median']:.4f}",
                f"{d['share_cos_above_0.9']:.2f}",
                f"{d['layer_abs_cos_median']:.3f}",
            ]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories trained with surgery=default")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "surgery_diagnostics.md"
    )
    args = parser.parse_args()
    results = [diagnose(run) for run in sorted(args.runs)]
    text = render(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text, end="")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
