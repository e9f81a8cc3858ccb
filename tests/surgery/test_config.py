"""The surgery options: every invalid value is rejected at construction, naming the valid ones; old
spellings fail with the new one; Hydra's `surgery=default` builds exactly the documented defaults."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from neurogrow.surgery import NeuronSurgery, SurgeryConfig
from neurogrow.surgery.config import GDA, Schedule, Scoring, old_override_message
from tests.conftest import compose_config, run_cli


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"split": {"second_moment": "zeros"}},
            "split.second_moment must be one of source, zero; got 'zeros'",
        ),
        ({"gda": {"center": "sourec"}}, "gda.center must be one of init, source; got 'sourec'"),
        ({"scoring": {"roles": ["chanel"]}}, "scoring.roles must be one of out, in, channel, stat, qk"),
        ({"scoring": {"roles": []}}, "scoring.roles must be a non-empty list"),
        ({"scoring": {"accumulation": "emaa"}}, "scoring.accumulation must be one of mean, ema; got 'emaa'"),
        ({"scoring": {"aggregate": "x"}}, "scoring.aggregate must be one of norm_of_sum, sum_of_norms"),
        ({"scoring": {"criterion": "taylor"}}, "criterion must be one of accum_grad, last_batch_grad, l1"),
        ({"scoring": {"ema_decay": 1.0}}, r"scoring.ema_decay must be a finite number in \(0.0, 1.0\)"),
        ({"gda": {"noise": float("nan")}}, "gda.noise must be a finite number"),
        ({"gda": {"noise": -0.1}}, "gda.noise must be a finite number"),
        ({"gda": {"enabled": "yes"}}, "gda.enabled must be true or false"),
        ({"gr": {"class_weighting": "log"}}, "gr.class_weighting must be one of linear, sqrt"),
        ({"ws": {"mode": "square"}}, "ws.mode must be one of linear, sqrt"),
        ({"ws": {"keep_fraction": 1.0}}, r"ws.keep_fraction must be a finite number in \(0.0, 1.0\)"),
        ({"ws": {"mode": "sqrt", "keep_fraction": 0.3}}, "needs ws.keep_fraction=0.5"),
        ({"split": {"reinit": "xavier"}}, "split.reinit must be one of split, he"),
        ({"ratio": 0.6}, r"ratio must be a finite number in \(0.0, 0.5\]"),
        ({"ratio": 0.0}, "2k may not exceed N"),
        ({"policy": "grow"}, "policy must be one of paired, grow_prune"),
        ({"policy": "grow_prune", "schedule": {"num_events": 3}}, "must end with a prune event"),
        ({"schedule": {"interval": 0}}, "schedule.interval must be an integer >= 1"),
        ({"schedule": {"start_epoch": -1}}, "schedule.start_epoch must be an integer >= 0"),
        ({"schedule": {"start_epoch": 2.5}}, "schedule.start_epoch must be an integer"),
        (
            {"schedule": {"interval": 2, "accumulate_epochs": 5}},
            r"accumulate_epochs must be an integer in \[1, 2\]",
        ),
        ({"input_size": [3, 32]}, r"input_size must be null or \[C, H, W\]"),
        ({"input_size": [3, 0, 32]}, "each of input_size must be an integer >= 1"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"verify": "no"}, "verify must be true or false"),
        ({"scoring": {"criterion": "l1", "decay": 0.5}}, r"scoring.decay is now scoring.ema_decay"),
        ({"gda": {"eps": 0.1}}, "unknown option gda.eps; valid options: enabled, noise, center"),
        ({"nmae": True}, "unknown option 'nmae'; valid options: ratio, policy, schedule, scoring"),
    ],
)
def test_invalid_values_are_rejected_at_construction(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NeuronSurgery(**options)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"nam": False}, "conventional training = no surgery group"),
        ({"last_epoch": 119}, "callbacks.surgery.schedule.num_events"),
        ({"start_epoch": 0}, "callbacks.surgery.schedule.start_epoch"),
        ({"num_events": 2}, "callbacks.surgery.schedule.num_events"),
        ({"criterion": "l1"}, "callbacks.surgery.scoring.criterion"),
        ({"decay": 0.5}, "callbacks.surgery.scoring.ema_decay"),
        ({"score_roles": ["out"]}, "callbacks.surgery.scoring.roles"),
        ({"class_weighting": "sqrt"}, "callbacks.surgery.gr.class_weighting"),
        ({"ws_mode": "sqrt"}, "callbacks.surgery.ws.mode"),
        ({"keep_fraction": 0.4}, "callbacks.surgery.ws.keep_fraction"),
        ({"noise": 0.1}, "callbacks.surgery.gda.noise"),
        ({"gda_center": "source"}, "callbacks.surgery.gda.center"),
        ({"second_moment": "zero"}, "callbacks.surgery.split.second_moment"),
        ({"reinit": "he"}, "callbacks.surgery.split.reinit"),
        ({"gr": False}, "callbacks.surgery.gr.enabled"),
        ({"ws": False}, "callbacks.surgery.ws.enabled"),
        ({"gda": True}, "callbacks.surgery.gda.enabled"),
        ({"schedule": "grow_prune"}, "callbacks.surgery.policy"),
    ],
)
def test_old_names_fail_with_the_new_spelling(old: dict, new: str) -> None:
    with pytest.raises(ValueError, match=new.replace(".", r"\.")):
        NeuronSurgery(**old)


def test_old_command_lines_are_recognised_before_hydra() -> None:
    assert "surgery=default" in old_override_message(["experiment=smoke", "callbacks=surgery"])
    assert "surgery=default" in old_override_message(["callbacks=[default,surgery]"])
    assert "schedule.num_events" in old_override_message(["callbacks.surgery.last_epoch=3"])
    assert "gda.noise" in old_override_message(["+callbacks.surgery.noise=0.1"])
    assert "gr.enabled" in old_override_message(["callbacks.surgery.gr=false"])
    assert "no surgery group" in old_override_message(["callbacks.surgery.nam=false"])
    new = ["surgery=default", "callbacks.surgery.gr.enabled=false", "callbacks.surgery.schedule.interval=2"]
    assert old_override_message(new) is None


def test_groups_accept_dicts_or_dataclasses_alike() -> None:
    as_dicts = NeuronSurgery(schedule={"start_epoch": 3, "num_events": None}, gda={"noise": 0.0})
    as_classes = NeuronSurgery(schedule=Schedule(start_epoch=3, num_events=None), gda=GDA(noise=0.0))
    assert as_dicts.config == as_classes.config
    assert as_dicts.config.schedule.interval == 30 and as_dicts.config.scoring == Scoring()


def test_hydra_default_group_builds_the_documented_defaults() -> None:
    cfg = compose_config("experiment=smoke", "surgery=default", "callbacks.surgery.scoring.roles=[out]")
    surgery = instantiate(cfg.callbacks.surgery)
    assert isinstance(surgery, NeuronSurgery)
    expected = SurgeryConfig.build(scoring={"roles": ["out"]})
    assert surgery.config == expected
    assert expected.schedule == Schedule(start_epoch=29, interval=30, num_events=4, accumulate_epochs=1)
    assert "surgery" not in compose_config("experiment=smoke").callbacks  # conventional training


@pytest.mark.slow
@pytest.mark.parametrize(
    ("old", "message"),
    [
        (["callbacks=surgery"], "callbacks=surgery is gone: switch neuron surgery on with surgery=default"),
        (["surgery=default", "callbacks.surgery.nam=false"], "conventional training = no surgery group"),
        (["surgery=default", "callbacks.surgery.start_epoch=0"], "callbacks.surgery.schedule.start_epoch"),
    ],
)
def test_old_command_line_fails_with_the_migration_message(old: list[str], message: str) -> None:
    """`neurogrow-train` with an old spelling exits 2 with one line naming the new spelling."""
    done = run_cli("neurogrow-train", "experiment=smoke", *old, timeout=600)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("neurogrow-train: error: ")
    assert message in done.stderr
