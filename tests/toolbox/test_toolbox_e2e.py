"""End-to-end smoke runs of every toolbox option through the real train entry, with and without surgery.

Each run combines several options (one loss each) to keep the count small: every loss, sampler and
callback technique runs at least once together with `surgery=default`, and the stage-two options
start from a real stage-one checkpoint.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

FAST = (
    "experiment=smoke",
    "data.batch_size=16",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "++trainer.limit_test_batches=1",
)
SURGERY = (
    "surgery=default",
    "callbacks.surgery.schedule.start_epoch=0",
    "callbacks.surgery.schedule.num_events=1",
)


def logged(run_dir: Path, key: str) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return [float(row[key]) for row in csv.DictReader(f) if row.get(key)]


def finite_metrics(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(metrics["test/acc"])
    return metrics


def state(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)[
        "state_dict"
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        (
            "loss=ldam",
            "reweighting=drw",
            "callbacks.reweighting.start_epoch=1",
            "sampler=sqrt",
            "logit_adjustment=posthoc",
        ),
        ("loss=focal", "reweighting=drs", "sampler.start_epoch=1", "feature_weakening=mfw"),
        (
            "loss=logit_adjusted",
            "sampler=progressive",
            "feature_weakening=mfw",
            "callbacks.feature_weakening.layer=layer2",
        ),
        (
            "loss=balanced_softmax",
            "sampler=class_balanced",
            "reweighting=drw",
            "callbacks.reweighting.start_epoch=1",
            "callbacks.reweighting.scheme=inverse_frequency",
        ),
    ],
    ids=["ldam-drw-sqrt-posthoc", "focal-drs-mfw", "la-progressive-mfw2", "bs-classbalanced-drw"],
)
def test_options_with_surgery(run_experiment, options: tuple[str, ...]) -> None:
    run_dir = run_experiment(*FAST, *SURGERY, *options)
    finite_metrics(run_dir)
    if "reweighting=drw" in options:
        assert logged(run_dir, "drw/active") == [0.0, 1.0]
    if "reweighting=drs" in options:
        assert logged(run_dir, "drs/active") == [0.0, 1.0]
    if "feature_weakening=mfw" in options:
        assert all(0.0 < f <= 1.0 for f in logged(run_dir, "mfw/weakened_fraction"))
    if "loss=ldam" in options:
        assert "model.fc.bias" not in state(run_dir)  # the cosine classifier (NormedLinear, no bias)


@pytest.mark.slow
def test_stage_one_then_crt_tau_norm_maxnorm(run_experiment) -> None:
    stage_one = run_experiment(
        *FAST,
        "loss=logit_adjusted",
        "feature_weakening=mfw",
        "logit_adjustment=posthoc",
        "reweighting=drw",
        "callbacks.reweighting.start_epoch=1",
    )
    finite_metrics(stage_one)
    ckpt = str(stage_one / "checkpoints" / "last.ckpt")
    before = state(stage_one)

    crt = run_experiment(*FAST, "decoupling=crt", "trainer.max_epochs=1", f"init_from={ckpt}")
    finite_metrics(crt)
    after = state(crt)
    for key, value in before.items():
        changed = not torch.equal(value, after[key])
        assert changed == key.startswith("model.fc."), key  # only the classifier was re-trained

    tau = run_experiment(*FAST, "decoupling=tau_norm", "trainer.max_epochs=0", f"init_from={ckpt}")
    assert finite_metrics(tau)["test/acc"] >= 0.0

    maxnorm = run_experiment(*FAST, "decoupling=maxnorm", "trainer.max_epochs=1", f"init_from={ckpt}")
    finite_metrics(maxnorm)
    # the reference's relative radius of the stage-one classifier (LTR-weight-balancing, thresh=0.1)
    norms = before["model.fc.weight"].norm(dim=1)
    radius = float(norms.min() + 0.1 * (norms.max() - norms.min()))
    final = state(maxnorm)["model.fc.weight"].norm(dim=1)
    assert float(final.max()) == pytest.approx(radius, rel=1e-5)
