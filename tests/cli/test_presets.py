"""The paper's experiments as presets: each sweep's grid, and every value of it, composes with real Hydra."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hydra.utils import get_object
from omegaconf import OmegaConf

from tests.cli.test_configs import _targets
from tests.conftest import compose_config

PAPER_CNN = {"vgg19_bn", "resnet18"}
PAPER_CIFAR_ARCHS = [
    "vgg19_bn",
    "resnet18",
    "convformer_s18",
    "caformer_s18",
    "vit_base_patch16_224",
    "mambaout_femto",
]
# preset -> number of runs of its sweep
GRIDS = {
    "paper_cifar": 2 * 2 * 6 * 2 * 3,
    "paper_cifar_literal": 2 * 2 * 6 * 2 * 3,
    "paper_criteria": 2 * 5 * 3,
    "paper_ablation": 2 * 5 * 3,
    "paper_ratio": 4 * 5 * 3,
    "paper_toolbox": 5 * 2 * 3,
    "paper_imagenet_lt": 5 * 2,
    "paper_inat2018": 3 * 2,
}


def _sweep(preset: str, tmp_path: Path) -> dict[str, list[str]]:
    cfg = compose_config(f"experiment={preset}", output_dir=tmp_path)
    params = cfg.hydra.sweeper.params
    params = OmegaConf.to_container(params) if params is not None else {}
    return {k: [v.strip() for v in str(values).split(",")] for k, values in params.items()}


def _job(preset: str, tmp_path: Path, *overrides: str) -> dict:
    cfg = compose_config(f"experiment={preset}", *overrides, output_dir=tmp_path)
    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    for target in _targets(job):
        get_object(target)
    return OmegaConf.to_container(job, resolve=True)


@pytest.mark.parametrize("preset", sorted(GRIDS))
def test_every_value_of_every_preset_sweep_composes(preset: str, tmp_path: Path):
    sweep = _sweep(preset, tmp_path)
    assert math.prod(len(v) for v in sweep.values()) == GRIDS[preset]
    for key, values in sweep.items():
        for value in values:
            job = _job(preset, tmp_path, f"{key}={value}")
            assert job["task_name"] == preset


def test_main_cifar_table_is_the_papers_grid(tmp_path: Path):
    sweep = _sweep("paper_cifar", tmp_path)
    assert sweep["arch"] == PAPER_CIFAR_ARCHS
    assert sweep["data"] == ["cifar10_lt", "cifar100_lt"] and sweep["data.imbalance_factor"] == ["10", "100"]
    assert sweep["variant"] == ["conventional", "surgery"]
    for arch in PAPER_CIFAR_ARCHS:
        job = _job("paper_cifar", tmp_path, f"arch={arch}")
        assert job["model"]["backbone"] == arch and job["model"]["small_input"] is True
        assert job["trainer"]["max_epochs"] == 150
        assert job["callbacks"]["surgery"]["schedule"] == {
            "start_epoch": 29,
            "interval": 30,
            "num_events": 4,
            "accumulate_epochs": 1,
        }
        optimizer = job["optimizer"]["_target_"]
        assert optimizer == ("torch.optim.SGD" if arch in PAPER_CNN else "torch.optim.AdamW")
        literal = _job("paper_cifar_literal", tmp_path, f"arch={arch}")["optimizer"]
        assert (
            literal["_target_"] == "torch.optim.AdamW" and literal["lr"] == 0.1 and literal["betas"][0] == 0.9
        )
    assert "surgery" not in _job("paper_cifar", tmp_path, "variant=conventional")["callbacks"]


def test_criteria_ablation_and_toolbox_rows(tmp_path: Path):
    crit = {
        v: _job("paper_criteria", tmp_path, f"variant={v}")
        for v in _sweep("paper_criteria", tmp_path)["variant"]
    }
    assert "surgery" not in crit["conventional"]["callbacks"]
    assert [
        crit[f"criterion_{c}"]["callbacks"]["surgery"]["scoring"]["criterion"]
        for c in ("random", "l1", "last_batch_grad", "accum_grad")
    ] == ["random", "l1", "last_batch_grad", "accum_grad"]
    nam = _job("paper_ablation", tmp_path, "variant=nam")["callbacks"]["surgery"]
    assert not (nam["gr"]["enabled"] or nam["ws"]["enabled"] or nam["gda"]["enabled"])
    assert _job("paper_ablation", tmp_path, "variant=nam_gr_ws")["callbacks"]["surgery"]["ws"]["enabled"]
    ldam = _job("paper_toolbox", tmp_path, "toolbox=ldam_drw", "variant=conventional")
    assert (
        ldam["loss"]["_target_"].endswith("LDAMLoss")
        and ldam["callbacks"]["reweighting"]["start_epoch"] == 120
    )
    assert "surgery" not in ldam["callbacks"]
    mfw = _job("paper_toolbox", tmp_path, "toolbox=mfw", "variant=surgery")["callbacks"]
    assert {"feature_weakening", "surgery"} <= mfw.keys()


def test_large_scale_presets(tmp_path: Path):
    for preset in ("paper_imagenet_lt", "paper_inat2018"):
        for arch in _sweep(preset, tmp_path)["arch"]:
            job = _job(preset, tmp_path, f"arch={arch}")
            assert job["model"]["small_input"] is False and job["trainer"]["max_epochs"] == 100
            assert job["callbacks"]["surgery"]["schedule"]["start_epoch"] == 19
            assert job["callbacks"]["surgery"]["schedule"]["interval"] == 20
    assert _sweep("paper_inat2018", tmp_path)["arch"] == [
        "resnet50",
        "vit_base_patch16_224",
        "mambaout_femto",
    ]


@pytest.mark.parametrize(
    "preset", ["paper_cifar10_lt_surgery", "paper_cifar10_lt_baseline", "paper_imagenet_lt_surgery"]
)
def test_single_run_presets_do_not_sweep(preset: str, tmp_path: Path):
    assert _sweep(preset, tmp_path) == {}
    assert _job(preset, tmp_path)["model"]["backbone"] in {"resnet18", "resnet50"}
