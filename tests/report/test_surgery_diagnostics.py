"""`benchmarks/surgery_diagnostics.py` on the real surgery runs of the test sweep; its churn arithmetic."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, run_cli

_spec = importlib.util.spec_from_file_location(
    "surgery_diagnostics", REPO_ROOT / "benchmarks" / "surgery_diagnostics.py"
)
diagnostics = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(diagnostics)


def _event(groups: list[dict]) -> dict:
    return {"event": 0, "epoch": 0, "added": 0, "groups": groups}


def _group(name: str, size: int, added: list[int], sources: list[int]) -> dict:
    return {
        "name": name,
        "size": size,
        "added": added,
        "sources": sources,
        "removed": added,
        "n_removed": len(added),
    }


def test_churn_counts_the_neurons_the_next_event_undoes_or_splits_again():
    first = _event(
        [_group("a", 10, added=[0, 1], sources=[5, 6]), _group("b", 20, added=[0, 1, 2, 3], sources=[9] * 4)]
    )
    # event 2 removes slot 1 of a (added before) and splits slot 0 of a and slots 2, 3 of b (added before)
    second = _event(
        [
            _group("a", 10, added=[1, 7], sources=[0, 8]),
            _group("b", 20, added=[10, 11, 12, 13], sources=[2, 3, 4, 5]),
        ]
    )
    result = diagnostics.churn(first, second)
    assert result["removed_again"] == pytest.approx(1 / 6)
    assert result["split_again"] == pytest.approx(3 / 6)
    assert result["random_expectation"] == pytest.approx((2 * 2 / 10 + 4 * 4 / 20) / 6)


@pytest.mark.slow
def test_copies_made_at_the_end_of_training_are_exact_copies_of_their_sources(sweep, tmp_path: Path):
    """The sweep's event falls at the end of its only epoch, so nothing trained the copies afterwards: every
    (new neuron, source) pair the script matches from the log must have cosine 1 in the final checkpoint."""
    root, _ = sweep
    runs = sorted(p for p in (root / "surgery").iterdir() if (p / "surgery_events.jsonl").is_file())
    assert len(runs) == 2
    out = tmp_path / "diagnostics.md"
    proc = run_cli([sys.executable, "benchmarks/surgery_diagnostics.py"], *map(str, runs), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for run in runs:
        result = diagnostics.diagnose(run)
        (div,) = result["divergence"]  # one event
        assert div["pairs"] == result["events"][0]["moved"] > 0
        assert div["cos_min"] == pytest.approx(1.0, abs=1e-5) and div["distance_median"] < 1e-5
        assert div["layer_abs_cos_median"] < 0.9  # other pairs of neurons are not copies of each other
        assert f"| {run.name} | 0 | 0 | {div['pairs']} | 1.0000 | 1.0000 | 0.0000 | 1.00 |" in out.read_text()
