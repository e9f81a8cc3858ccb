"""`NeuronSurgery` in real Lightning runs: schedule, function preservation, criteria, logging, ablations."""

from __future__ import annotations

import csv
import functools
import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from neurogrow.models.module import LongTailClassifier
from neurogrow.surgery.callback import NeuronSurgery
from neurogrow.surgery.edits import remove_neurons
from neurogrow.surgery.events import EVENTS_FILE, read_events
from tests.conftest import make_module, make_trainer
from tests.surgery.conftest import COUNTS, tiny_long_tail

# Small members of the paper's families: a CIFAR ResNet, a ViT (per-head q/k and v groups, MLP hidden
# units) and MambaOut (gated blocks).
EVERY_EPOCH = {"start_epoch": 0, "interval": 1, "num_events": None}

BACKBONES = {
    "resnet": ("resnet20_cifar", {"widths": (8, 16, 16)}),
    "vit": (
        "vit_tiny_patch16_224",
        {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 48, "num_heads": 2},
    ),
    "mambaout": ("mambaout_femto", {"depths": (1, 1, 1, 1), "dims": (16, 32, 48, 64)}),
}


def classifier(backbone: str = "resnet") -> LongTailClassifier:
    name, kwargs = BACKBONES[backbone]
    return make_module(
        class_counts=COUNTS,
        backbone=name,
        backbone_kwargs=kwargs,
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-3),
    )


def fit(
    tmp_path: Path,
    surgery: NeuronSurgery,
    *extra: L.Callback,
    epochs: int = 1,
    backbone: str = "resnet",
    **kw,
) -> L.Trainer:
    """One real `Trainer.fit`; `extra[0]` runs before the surgery callback, the rest after it."""
    trainer = make_trainer(
        [*extra[:1], surgery, *extra[1:]],
        max_epochs=epochs,
        default_root_dir=tmp_path,
        limit_val_batches=0,
        **kw,
    )
    trainer.fit(classifier(backbone), datamodule=tiny_long_tail())
    return trainer


class Probe(L.Callback):
    """Records the backbone's eval-mode output on a fixed input and its parameter objects at epoch end."""

    def __init__(self) -> None:
        self.x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        self.outputs: list[torch.Tensor] = []
        self.params: list[list[torch.Tensor]] = []
        self.states: list[dict[str, torch.Tensor]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model = pl_module.model
        model.eval()
        with torch.no_grad():
            self.outputs.append(model(self.x))
        model.train()
        self.params.append(list(model.parameters()))
        self.states.append({k: v.detach().clone() for k, v in model.state_dict().items()})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio": 0.7}, "ratio must be"),
        ({"scoring": {"criterion": "taylor"}}, "criterion must be one of"),
        ({"schedule": {"accumulate_epochs": 5, "interval": 2}}, "accumulate_epochs"),
        ({"gr": {"class_weighting": "log"}}, "class_weighting"),
        (
            {"policy": "grow_prune", "schedule": {"start_epoch": 0, "interval": 1, "num_events": 3}},
            "must end with a prune",
        ),
        ({"schedule": {"interval": 0}}, "interval"),
    ],
)
def test_bad_settings_get_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NeuronSurgery(**kwargs)


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_event_preserves_function_and_parameter_objects(tmp_path: Path, backbone: str) -> None:
    """With GDA off (no noise, statistics copied) the splits are exact; only the removals change outputs."""
    before, after = Probe(), Probe()
    surgery = NeuronSurgery(schedule=EVERY_EPOCH, ratio=0.2, gda={"enabled": False})
    trainer = fit(tmp_path, surgery, before, after, backbone=backbone, logger=CSVLogger(tmp_path, name="csv"))
    assert not surgery.excluded
    assert surgery.event_count == 1
    assert all(p is q for p, q in zip(before.params[0], after.params[0]))
    assert all(p is q for p, q in zip(trainer.optimizers[0].param_groups[0]["params"], after.params[0]))
    changed = [k for k in before.states[0] if not torch.equal(before.states[0][k], after.states[0][k])]
    assert changed, "the event must have edited some tensors"

    # The event removes the k worst neurons (that changes the function) and splits the k best into their
    # slots (that must not): replaying only the removals on the pre-event weights gives the same outputs.
    (event,) = read_events(tmp_path)
    reference = classifier(backbone).model
    reference.load_state_dict(before.states[0])
    for g, rec in zip(surgery.groups, event["groups"]):
        remove_neurons(reference, g, torch.tensor(rec["removed"]))
    with torch.no_grad():
        expected = reference.eval()(before.x)
    torch.testing.assert_close(after.outputs[0], expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(after.outputs[0], before.outputs[0], rtol=0, atol=1e-6)  # removals did act
    assert event["epoch"] == 0 and event["criterion"] == "accum_grad" and event["phase"] == "paired"
    for g in event["groups"]:
        k = min(math.ceil(0.2 * g["size"]), g["size"] // 2)
        assert len(g["added"]) == len(g["removed"]) == len(g["sources"]) == k
        assert not set(g["sources"]) & set(g["removed"])
        assert g["score_max"] >= g["score_mean"] >= g["score_min"] >= 0
    assert event["neurons_total"] == sum(g["size"] for g in event["groups"])
    assert event["seconds"] > 0
    rows = list(csv.DictReader((Path(trainer.logger.log_dir) / "metrics.csv").open()))
    logged = {k for r in rows for k, v in r.items() if v}
    assert {"surgery/added", "surgery/removed", "surgery/neurons_total", "surgery/event_seconds"} <= logged


def test_removed_neurons_are_the_lowest_scored(tmp_path: Path) -> None:
    surgery = NeuronSurgery(schedule=EVERY_EPOCH, ratio=0.25, scoring={"criterion": "l1"}, verify=False)
    before = Probe()
    fit(tmp_path, surgery, before)
    (event,) = read_events(tmp_path)
    state = before.states[0]
    for g, rec in zip(surgery.groups, event["groups"]):
        l1 = sum(
            state[s.path].index_select(s.dim, s.indices).movedim(s.dim, 0).reshape(g.size, -1).abs().sum(1)
            for s in g.slices
            if s.role in ("out", "channel", "qk")
        )
        k = len(rec["sources"])
        assert set(rec["sources"]) == set(l1.topk(k).indices.tolist())
        assert set(rec["removed"]) == set(l1.topk(k, largest=False).indices.tolist())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scoring": {"criterion": "last_batch_grad"}},
        {"scoring": {"criterion": "random"}, "log_indices": False},
        {
            "scoring": {"criterion": "accum_grad", "accumulation": "ema", "aggregate": "sum_of_norms"},
            "gr": {"enabled": False},
        },
        {
            "scoring": {"criterion": "accum_grad"},
            "gr": {"class_weighting": "sqrt"},
            "ws": {"enabled": False},
            "split": {"reinit": "he"},
        },
        {
            "scoring": {"criterion": "accum_grad"},
            "ws": {"mode": "sqrt"},
            "gda": {"center": "source"},
            "split": {"second_moment": "zero"},
        },
    ],
    ids=["last_batch", "random", "ema_no_gr", "sqrt_no_ws_he", "ws_sqrt"],
)
def test_every_criterion_and_switch_runs_an_event(tmp_path: Path, kwargs: dict) -> None:
    surgery = NeuronSurgery(schedule=EVERY_EPOCH, verify=False, **kwargs)
    fit(tmp_path, surgery)
    (event,) = read_events(tmp_path)
    assert event["criterion"] == kwargs["scoring"]["criterion"] and event["added"] == event["removed"] > 0


def read_events_or_empty(run_dir: Path) -> list[dict]:
    return read_events(run_dir) if (run_dir / EVENTS_FILE).exists() else []


def test_setup_record_lists_groups_and_exclusions(tmp_path: Path) -> None:
    surgery = NeuronSurgery(schedule={"start_epoch": 5, "interval": 5}, verify=False)
    with pytest.warns(UserWarning, match="surgery will never run"):  # one epoch, first event after epoch 5
        fit(tmp_path, surgery)
    records = [json.loads(line) for line in (tmp_path / EVENTS_FILE).read_text().splitlines()]
    assert records[0]["type"] == "setup" and len(records) == 1  # no event before epoch 5
    assert [g["name"] for g in records[0]["groups"]] == [g.name for g in surgery.groups]
    assert records[0]["neurons_total"] == sum(g.size for g in surgery.groups)


def test_grow_then_prune_changes_the_count_and_ends_at_the_start_width(tmp_path: Path) -> None:
    """Dormant slots: grow (+k per group), then prune (-k); dormant neurons stay exactly zero."""
    after = Probe()
    surgery = NeuronSurgery(
        schedule={"start_epoch": 0, "interval": 1, "num_events": 2},
        ratio=0.25,
        policy="grow_prune",
        verify=False,
    )
    fit(tmp_path, surgery, Probe(), after, epochs=3)
    grow, prune = read_events(tmp_path)
    full = sum(g.size for g in surgery.groups)
    k_total = sum(min(math.ceil(0.25 * g.size), g.size // 2) for g in surgery.groups)
    assert (grow["phase"], prune["phase"]) == ("grow", "prune")
    assert grow["neurons_total"] == full and grow["added"] == k_total and grow["removed"] == 0
    assert prune["neurons_total"] == full - k_total and prune["removed"] == k_total and prune["added"] == 0
    state = after.states[-1]  # two epochs after the prune: still exactly zero
    for g, rec in zip(surgery.groups, prune["groups"]):
        dormant = torch.tensor(rec["removed"])
        for s in g.slices:
            if s.role in ("out", "in"):
                assert bool((state[s.path].index_select(s.dim, s.indices[dormant]) == 0).all()), s.path


def scores_and_sources(tmp_path: Path, **options) -> tuple[list[float], list[list[int]]]:
    fit(tmp_path, NeuronSurgery(schedule=EVERY_EPOCH, verify=False, **options))
    (event,) = read_events(tmp_path)
    return [g["score_mean"] for g in event["groups"]], [g["sources"] for g in event["groups"]]


def test_gradient_reweighting_changes_the_scores(tmp_path: Path) -> None:
    """The tiny data set's batches hold different classes, so w_b weighs them differently."""
    with_gr, _ = scores_and_sources(tmp_path / "gr")
    without, _ = scores_and_sources(tmp_path / "no_gr", gr={"enabled": False})
    assert with_gr != pytest.approx(without, rel=1e-3)
    sqrt, _ = scores_and_sources(tmp_path / "sqrt", gr={"class_weighting": "sqrt"})
    assert sqrt != pytest.approx(with_gr, rel=1e-3) and sqrt != pytest.approx(without, rel=1e-3)


def test_random_criterion_chooses_other_neurons_than_accum_grad(tmp_path: Path) -> None:
    _, accum = scores_and_sources(tmp_path / "accum")
    _, rand = scores_and_sources(tmp_path / "random", scoring={"criterion": "random"})
    assert accum != rand


@pytest.mark.parametrize("enabled", [True, False], ids=["ws_gda_on", "ws_gda_off"])
def test_ws_and_gda_switches_act_in_a_run(tmp_path: Path, enabled: bool) -> None:
    """WS off: the copy gets the source's full consumer weights; GDA off: new neurons equal their sources."""
    before, after = Probe(), Probe()
    switches = {"ws": {"enabled": enabled}, "gda": {"enabled": enabled}}
    surgery = NeuronSurgery(schedule=EVERY_EPOCH, verify=False, **switches)
    fit(tmp_path, surgery, before, after)
    (event,) = read_events(tmp_path)
    pre, post = before.states[0], after.states[0]
    for g, rec in zip(surgery.groups, event["groups"]):
        src, tgt = torch.tensor(rec["sources"]), torch.tensor(rec["added"])
        for s in g.slices:
            old = pre[s.path].index_select(s.dim, s.indices[src])
            new = post[s.path].index_select(s.dim, s.indices[tgt])
            same = torch.equal(new, post[s.path].index_select(s.dim, s.indices[src]))
            if s.role == "in":
                torch.testing.assert_close(new, old * (0.5 if enabled else 1.0))
            elif s.role == "channel" and s.path.endswith("weight"):  # BN gamma: GDA draws it anew
                assert same != enabled, s.path
            elif s.role == "out":
                assert same, s.path


def test_input_size_is_the_probe_that_finds_the_groups(tmp_path: Path) -> None:
    small = NeuronSurgery(schedule=EVERY_EPOCH, verify=False, input_size=[3, 16, 16])
    fit(tmp_path / "small", small)
    assert len(small.groups) == 9  # found on a 16x16 probe, used on 32x32 batches
    with pytest.raises(RuntimeError, match="channels"):  # a 1-channel probe cannot enter the 3-channel stem
        fit(tmp_path / "gray", NeuronSurgery(schedule=EVERY_EPOCH, verify=False, input_size=[1, 32, 32]))


def test_runs_under_mixed_precision(tmp_path: Path) -> None:
    """bf16 autocast: gradients reach the accumulator through the precision plugin, scores stay finite."""
    surgery = NeuronSurgery(schedule=EVERY_EPOCH, verify=False)
    fit(tmp_path, surgery, precision="bf16-mixed")
    (event,) = read_events(tmp_path)
    assert event["added"] > 0
    assert all(math.isfinite(g["score_max"]) and g["score_max"] > 0 for g in event["groups"])
