"""Limited evaluation (`limit_val_batches`, `limit_test_batches`) sees every class, and the metrics leave
out the classes it did not see (as classifier-balancing's `shot_acc`); Many/Few thresholds configurable."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from neurogrow.metrics import LongTailAccuracy, shot_groups
from tests.robust.helpers import TINY, train


@pytest.mark.slow
def test_smoke_run_validates_and_tests_on_every_class_it_can(tmp_path: Path) -> None:
    # val: 2 batches of 5 = 10 images, one per class; test: 1 batch of 5 = five classes only
    proc = train(
        *TINY,
        "data.eval_batch_size=5",
        "trainer.limit_val_batches=2",
        "++trainer.limit_test_batches=1",
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/classes_evaluated")]
    assert [float(r["val/classes_evaluated"]) for r in rows] == [10.0]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    per_class = metrics["test/acc_per_class"]
    seen = [a for a in per_class if not math.isnan(a)]
    assert metrics["test/classes_evaluated"] == len(seen) == 5
    # the balanced accuracy is over the evaluated classes, not (sum of them) / 10
    assert metrics["test/balanced_acc"] == pytest.approx(sum(seen) / 5, abs=1e-6)


def test_classes_without_samples_are_left_out_of_groups_and_balanced_accuracy() -> None:
    metric = LongTailAccuracy([1000, 50, 5, 500])
    target = torch.tensor([0, 0, 2, 2])
    metric.update(torch.tensor([0, 1, 2, 2]), target)
    out = metric.compute()
    assert out["balanced_acc"].item() == pytest.approx((0.5 + 1.0) / 2)
    assert out["acc_many"].item() == pytest.approx(0.5)  # class 3 (Many, unseen) is not a 0 % class
    assert "acc_medium" not in out  # class 1, the only Medium class, was not evaluated
    assert out["acc_few"].item() == 1.0
    assert torch.isnan(out["per_class"][1]) and torch.isnan(out["per_class"][3])


def test_many_threshold_conventions() -> None:
    counts = [101, 100, 99, 20, 19]
    assert shot_groups(counts)["many"].tolist() == [True, False, False, False, False]
    assert shot_groups(counts, many_inclusive=True)["many"].tolist() == [True, True, False, False, False]
    assert shot_groups(counts)["few"].tolist() == [False, False, False, False, True]


@pytest.mark.slow
def test_seed_paper_convention_from_the_command_line(tmp_path: Path) -> None:
    # CIFAR-10-LT exp IF=50 has a class of exactly 100 images: Medium by default, Many with metrics=seed_paper
    runs = {}
    for option in ("metrics=default", "metrics=seed_paper"):
        run_dir = tmp_path / option.split("=")[1]
        proc = train(
            *TINY,
            option,
            "data.imbalance_factor=50",
            "trainer.limit_val_batches=0",
            "++trainer.limit_test_batches=1",
            f"hydra.run.dir={run_dir}",
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        counts = json.loads((run_dir / "class_counts.json").read_text())["class_counts"]
        assert 100 in counts
        runs[option] = json.loads((run_dir / "metrics.json").read_text())
    per_class = runs["metrics=default"]["test/acc_per_class"]
    assert runs["metrics=default"]["test/acc_per_class"] == runs["metrics=seed_paper"]["test/acc_per_class"]
    many_default = [a for c, a in zip(counts, per_class, strict=True) if c > 100]
    many_paper = [a for c, a in zip(counts, per_class, strict=True) if c >= 100]
    assert runs["metrics=default"]["test/acc_many"] == pytest.approx(sum(many_default) / len(many_default))
    assert runs["metrics=seed_paper"]["test/acc_many"] == pytest.approx(sum(many_paper) / len(many_paper))
