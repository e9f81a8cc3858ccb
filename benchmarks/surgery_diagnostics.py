"""Why surgery does or does not help: diagnostics of surgery runs from their event logs and final checkpoints.

Reads only `surgery_events.jsonl` and `checkpoints/last.ckpt` of each run directory (no test data), so it
can guide a follow-up without tuning on the test set. Three questions from the does-it-help issue:

- Selection: does the accumulated gradient single neurons out? Per event, the layers' score spread
  (`score_max / score_mean` and `score_min / score_mean`, median over layers; a spread near 1 means the
  chosen neurons barely differ from the rest, and selection is close to `criterion=random`).
- Churn: does the next event undo this one? The share of the neurons added at event e that event e+1
  removes again, and the share it picks as sources, against random selection's expectation k/n.
- Divergence: do split copies become different neurons? At the end of training, the cosine similarity of
  each new neuron's incoming weights to its source's (pairs of the last event, whose slots no later event
  touched; 1 = still a copy), against the median |cos| of all other neuron pairs in the same layer.

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


def divergence(events: list[dict], state: dict[str, torch.Tensor]) -> dict[str, float]:
    """Cosine similarity (new neuron, its source) at the end of training for the last event's pairs that
    survived unchanged, and the median |cos| of the other neuron pairs in the same layers."""
    last = events[-1]
    pairs, background, skipped = [], [], 0
    for group in last["groups"]:
        rows = _weight(state, group["name"], group["size"])
        if rows is None or not group["added"]:
            skipped += rows is None
            continue
        unit = torch.nn.functional.normalize(rows, dim=1)
        cos = unit @ unit.T
        for slot, source in zip(group["added"], group["sources"], strict=True):
            pairs.append(cos[slot, source].item())
        off_diagonal = ~torch.eye(len(cos), dtype=torch.bool)
        background.append(cos[off_diagonal].abs().median().item())
    return {
        "pairs": len(pairs),
        "pair_cos_median": _median(pairs),
        "pair_cos_min": min(pairs) if pairs else float("nan"),
        "pair_cos_above_0.9": sum(c > 0.9 for c in pairs) / len(pairs) if pairs else float("nan"),
        "layer_abs_cos_median": _median(background),
        "groups_without_plain_weight": skipped,
    }


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
    lines += ["", "## Divergence of the last event's split copies at the end of training", ""]
    lines += [
        "| run | pairs | median cos(new, source) | min | share > 0.9 | median abs cos of other pairs |",
        "|---|---|---|---|---|---|",
    ]
    for res in results:
        d = res.get("divergence")
        if d:
            lines.append(
                f"| {res['run']} | {d['pairs']} | {d['pair_cos_median']:.3f} | {d['pair_cos_min']:.3f} | "
                f"{d['pair_cos_above_0.9']:.2f} | {d['layer_abs_cos_median']:.3f} |"
            )
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
