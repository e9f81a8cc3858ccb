"""Group runs, summarise each group over seeds, and compare it with a reference group.

Grouping keys are the config keys whose values differ between runs, minus the seed (seeds are the
replicates) and anything derived from it or from the run's directory. A config subtree present in some
runs and absent in others (`callbacks.surgery` in one arm only) is summarised by the derived `method`
column (conventional / surgery / ...); keys inside it stay only if they differ where present (a ratio sweep).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from scipy import stats

from neurogrow.errors import UserError
from neurogrow.report.collect import Run
from neurogrow.report.paper import paper_value

__all__ = [
    "METRICS",
    "Difference",
    "Group",
    "Report",
    "Summary",
    "build_report",
    "group_keys",
    "paired_difference",
    "parse_reference",
    "summarise",
]

# (column, metrics.json key, paper table key)
METRICS: tuple[tuple[str, str, str], ...] = (
    ("overall", "test/acc", "overall"),
    ("many", "test/acc_many", "many"),
    ("medium", "test/acc_medium", "medium"),
    ("few", "test/acc_few", "few"),
    ("balanced", "test/balanced_acc", "balanced"),
)
_IGNORED_PREFIXES = ("paths.", "hydra.", "logger.")
_IGNORED_KEYS = {"seed", "ckpt_path", "tags"}
MISSING = "-"


@dataclass
class Summary:
    """Mean and sample standard deviation (ddof=1; NaN for one run) of a metric, in percent."""

    mean: float
    std: float
    n: int


@dataclass
class Difference:
    """Group minus reference, in points; `low`/`high` is the 95 % Student-t interval of paired seeds."""

    mean: float
    low: float | None
    high: float | None
    n_pairs: int


@dataclass
class Group:
    key: dict[str, Any]
    runs: list[Run]
    stats: dict[str, Summary] = field(default_factory=dict)
    paper: dict[str, float] = field(default_factory=dict)
    reference: Group | None = None
    differences: dict[str, Difference] = field(default_factory=dict)

    @property
    def seeds(self) -> list[Any]:
        return [r.seed for r in self.runs]

    def label(self) -> str:
        return ", ".join(f"{k}={format_value(v)}" for k, v in self.key.items()) or "all runs"


@dataclass
class Report:
    keys: list[str]  # full dotted grouping keys
    labels: dict[str, str]  # dotted key -> short column name
    groups: list[Group]
    incomplete: list[Run]  # failed or unfinished runs, listed not dropped
    reference: dict[str, Any] | None


def format_value(value: Any) -> str:
    if isinstance(value, str) and "." in value and value.split(".")[0] in {"neurogrow", "lightning", "torch"}:
        return value.rsplit(".", 1)[-1]  # a _target_: the class name says enough
    if isinstance(value, tuple):
        return "[" + ",".join(map(str, value)) + "]"
    return "null" if value is None else str(value)


def _derived_from_seed(key: str, runs: Sequence[Run]) -> bool:
    return all(key in r.config and r.config[key] == r.seed for r in runs)


def _mentions_run_dir(key: str, runs: Sequence[Run]) -> bool:
    """True for paths inside the run directory (checkpoint dirs, logger dirs): unique per run by design."""
    for r in runs:
        tail = "/".join(r.path.resolve().parts[-2:])
        value = str(r.config.get(key, ""))
        if value.rstrip("/").endswith(tail) or f"{tail}/" in value:
            return True
    return False


def group_keys(runs: Sequence[Run], by: Sequence[str] | None = None) -> list[str]:
    """The config keys that tell the groups apart (`by` if given, validated against the configs)."""
    if by:
        known = set().union(*(r.config for r in runs)) if runs else set()
        unknown = [k for k in by if k not in known]
        if unknown:
            raise UserError(
                f"--by: no run has config key(s) {', '.join(unknown)}; use dotted keys as in config.yaml "
                "(e.g. model.backbone, callbacks.surgery.ratio) or method"
            )
        return list(by)
    keys: list[str] = []
    all_keys = sorted(set().union(*(r.config for r in runs))) if runs else []
    for key in all_keys:
        if key in _IGNORED_KEYS or key.startswith(_IGNORED_PREFIXES):
            continue
        present = [r.config[key] for r in runs if key in r.config]
        if len({repr(v) for v in present}) <= 1:
            continue  # same everywhere it exists (a subtree absent in some runs is what `method` says)
        if _derived_from_seed(key, runs) or _mentions_run_dir(key, runs):
            continue
        keys.append(key)
    if "method" in keys:  # the derived column first: it is the one a reader looks for
        keys.remove("method")
        keys.insert(0, "method")
    return keys


def short_labels(keys: Sequence[str]) -> dict[str, str]:
    """Shortest dotted suffix that is unique among `keys` (`callbacks.surgery.ratio` -> `ratio`)."""
    labels = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if parts[-1] == "_target_" and n == 1:
                continue
            if sum(k == suffix or k.endswith("." + suffix) for k in keys) == 1:
                labels[key] = suffix
                break
        else:
            labels[key] = key
    return labels


def summarise(values: Sequence[float]) -> Summary:
    n = len(values)
    mean = sum(values) / n if n else math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return Summary(mean, std, n)


def paired_difference(diffs: Sequence[float], confidence: float = 0.95) -> Difference:
    """Mean of paired differences with its Student-t interval (none for fewer than two pairs)."""
    s = summarise(diffs)
    if s.n < 2:
        return Difference(s.mean, None, None, s.n)
    half = stats.t.ppf(0.5 + confidence / 2, s.n - 1) * s.std / math.sqrt(s.n)
    return Difference(s.mean, s.mean - half, s.mean + half, s.n)


def parse_reference(spec: str | None) -> dict[str, Any] | None:
    """`method=conventional,model.backbone=resnet18` -> {key: value}; values parsed as YAML scalars."""
    if not spec:
        return None
    out = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--reference: expected key=value[,key=value...], got {spec!r}")
        out[key.strip()] = yaml.safe_load(value.strip())
    return out


def _matches(value: Any, wanted: Any) -> bool:
    return value == wanted or format_value(value) == format_value(wanted)


def _metric(run: Run, key: str) -> float | None:
    value = (run.metrics or {}).get(key)
    return 100.0 * float(value) if isinstance(value, int | float) else None


def _find_reference(group: Group, groups: Sequence[Group], reference: Mapping[str, Any]) -> Group | None:
    """The reference group for `group`: matches `reference`, and `group` on every other key it has."""
    candidates = []
    for other in groups:
        if not all(_matches(other.key.get(k, MISSING), v) for k, v in reference.items()):
            continue
        rest = [k for k in group.key if k not in reference]
        if all(other.key[k] == MISSING or other.key[k] == group.key[k] for k in rest):
            exact = sum(other.key[k] == group.key[k] for k in rest)
            candidates.append((exact, other))
    if not candidates:
        return None
    best = max(c[0] for c in candidates)
    top = [g for e, g in candidates if e == best]
    return top[0] if len(top) == 1 else None


def build_report(
    runs: Sequence[Run],
    by: Sequence[str] | None = None,
    reference: Mapping[str, Any] | None = None,
    pair_key: str = "seed",
) -> Report:
    """Group the finished runs, summarise them, and attach paired differences to `reference`."""
    finished = [r for r in runs if r.finished]
    incomplete = [r for r in runs if not r.finished]
    keys = group_keys(finished, by)
    if reference:
        unknown = [k for k in reference if k not in keys]
        if unknown:
            raise UserError(
                f"--reference: {', '.join(unknown)} is not a grouping key here (grouping keys: "
                f"{', '.join(keys) or 'none: all runs form one group'}); pass --by to group by it"
            )
    grouped: dict[tuple, Group] = {}
    for run in finished:
        key = {k: run.config.get(k, MISSING) for k in keys}
        grouped.setdefault(tuple(repr(v) for v in key.values()), Group(key=key, runs=[])).runs.append(run)
    groups = list(grouped.values())
    for g in groups:
        for name, metric_key, paper_key in METRICS:
            values = [v for v in (_metric(r, metric_key) for r in g.runs) if v is not None]
            if values:
                g.stats[name] = summarise(values)
            paper = paper_value(g.runs[0].config, paper_key)
            if paper is not None:
                g.paper[name] = paper
    if reference:
        if not any(all(_matches(g.key[k], v) for k, v in reference.items()) for g in groups):
            choices = "; ".join(g.label() for g in groups)
            raise UserError(f"--reference: no group has {reference}; the groups are: {choices}")
        for g in groups:
            ref = _find_reference(g, groups, reference)
            if ref is None or ref is g:
                continue
            g.reference = ref
            for name, metric_key, _ in METRICS:
                g.differences[name] = _difference(g, ref, metric_key, pair_key)
    return Report(keys, short_labels(keys), groups, incomplete, dict(reference) if reference else None)


def _difference(group: Group, ref: Group, metric_key: str, pair_key: str) -> Difference | None:
    ours = {repr(r.config.get(pair_key)): _metric(r, metric_key) for r in group.runs}
    theirs = {repr(r.config.get(pair_key)): _metric(r, metric_key) for r in ref.runs}
    pairs = [(ours[k], theirs[k]) for k in ours if k in theirs and None not in (ours[k], theirs[k])]
    if pairs:
        return paired_difference([a - b for a, b in pairs])
    a = [v for v in ours.values() if v is not None]
    b = [v for v in theirs.values() if v is not None]
    if not a or not b:
        return None
    return Difference(sum(a) / len(a) - sum(b) / len(b), None, None, 0)  # unpaired: no interval claimed
