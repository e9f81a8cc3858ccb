"""Every toolbox option composes (alone and with `surgery=default`) and instantiates its real objects."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from neurogrow.cli.errors import user_error_message
from neurogrow.losses import LongTailLoss
from tests.conftest import CONFIG_DIR, compose_config

COUNTS = [50, 20, 5, 1]
LOSSES = sorted(p.stem for p in (CONFIG_DIR / "loss").glob("*.yaml"))
SAMPLERS = sorted(p.stem for p in (CONFIG_DIR / "sampler").glob("*.yaml"))
CALLBACK_OPTIONS = [
    f"{group}={p.stem}"
    for group in ("reweighting", "feature_weakening", "logit_adjustment", "decoupling")
    for p in sorted((CONFIG_DIR / group).glob("*.yaml"))
]


def test_every_documented_option_exists() -> None:
    assert set(LOSSES) >= {"ce", "weighted_ce", "focal", "ldam", "logit_adjusted", "balanced_softmax"}
    assert set(SAMPLERS) >= {"class_balanced", "sqrt", "progressive"}
    assert set(CALLBACK_OPTIONS) >= {
        "reweighting=drw",
        "reweighting=drs",
        "feature_weakening=mfw",
        "logit_adjustment=posthoc",
        "decoupling=crt",
        "decoupling=tau_norm",
        "decoupling=maxnorm",
    }


@pytest.mark.parametrize("surgery", [False, True], ids=["plain", "surgery"])
@pytest.mark.parametrize(
    "option", [f"loss={n}" for n in LOSSES] + [f"sampler={n}" for n in SAMPLERS] + CALLBACK_OPTIONS
)
def test_option_composes_and_instantiates(option: str, surgery: bool, tmp_path: Path) -> None:
    overrides = ["experiment=smoke", option, "init_from=stage1.ckpt"]
    if surgery:
        overrides.append("surgery=default")
    cfg = compose_config(*overrides, output_dir=tmp_path)
    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    OmegaConf.to_container(job, resolve=True)  # every interpolation resolves
    loss = instantiate(cfg.loss)(class_counts=COUNTS)
    assert isinstance(loss, LongTailLoss)
    assert loss(torch.randn(3, 4), torch.tensor([0, 1, 3])).isfinite()
    if cfg.get("sampler"):
        sampler = instantiate(cfg.sampler)(labels=torch.tensor([0] * 50 + [1] * 20 + [2] * 5 + [3]))
        assert len(list(sampler)) == 76
    callbacks = {name: instantiate(node) for name, node in cfg.callbacks.items() if node}
    assert all(isinstance(cb, Callback) for cb in callbacks.values())
    assert ("surgery" in callbacks) == surgery
    assert "model_checkpoint" in callbacks  # the defaults are kept


@pytest.mark.parametrize("option", ["crt", "tau_norm", "maxnorm"])
def test_stage_two_options_require_a_checkpoint(option: str, tmp_path: Path) -> None:
    cfg = compose_config("experiment=smoke", f"decoupling={option}", output_dir=tmp_path)
    with pytest.raises(Exception) as info:  # Hydra wraps it; the CLI prints the inner line
        instantiate(cfg.callbacks.decoupling)
    message = user_error_message(info.value)
    assert message is not None and "stage two" in message and "init_from=outputs/" in message


@pytest.mark.parametrize("option", [*CALLBACK_OPTIONS, "surgery=default"])
def test_technique_groups_write_only_their_own_callback(option: str, tmp_path: Path) -> None:
    """A technique adds `callbacks.<group>` and otherwise only picks a sampler through its defaults list."""
    group = option.split("=")[0]
    base = compose_config("experiment=smoke", "init_from=stage1.ckpt", output_dir=tmp_path)
    cfg = compose_config("experiment=smoke", "init_from=stage1.ckpt", option, output_dir=tmp_path)
    job, before = (OmegaConf.to_container(c, resolve=False) for c in (cfg, base))
    for key in set(job) | set(before):
        if key not in ("hydra", "callbacks", "sampler"):
            assert job.get(key) == before.get(key), f"{option} changed {key}"
    assert set(cfg.callbacks) - set(base.callbacks) == {group}
    assert all(cfg.callbacks[k] == base.callbacks[k] for k in base.callbacks)
    expected_sampler = {"reweighting=drs": "DeferredResampler", "decoupling=crt": "ClassBalancedSampler"}
    expected_sampler["decoupling=maxnorm"] = "ClassBalancedSampler"
    if option in expected_sampler:
        assert cfg.sampler._target_.endswith(expected_sampler[option])
    else:
        assert cfg.get("sampler") == base.get("sampler")


def test_a_sampler_chosen_on_the_command_line_wins_over_the_techniques_choice(tmp_path: Path) -> None:
    cfg = compose_config("experiment=smoke", "reweighting=drs", "sampler=sqrt", output_dir=tmp_path)
    assert cfg.sampler._target_.endswith("SquareRootSampler")


def test_ldam_gives_the_cosine_head_through_its_own_option(tmp_path: Path) -> None:
    from neurogrow.models.heads import NormedLinear

    for overrides, normed in [(("loss=ldam",), True), (("loss=ldam", "loss.normed_head=false"), False)]:
        cfg = compose_config("experiment=smoke", *overrides, output_dir=tmp_path)
        assert "normed_classifier" not in cfg.callbacks
        model = instantiate(
            cfg.model, num_classes=4, class_counts=COUNTS, loss=instantiate(cfg.loss), _convert_="all"
        )
        assert isinstance(model.model.get_classifier(), NormedLinear) == normed
