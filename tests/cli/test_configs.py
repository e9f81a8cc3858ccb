"""Every experiment composes, and every `_target_` in it names something importable."""

from pathlib import Path

import pytest
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from tests.conftest import CONFIG_DIR, compose_config

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def _targets(node) -> list[str]:
    found = []
    if isinstance(node, DictConfig):
        for key in node:
            if key == "_target_":
                found.append(node[key])
            else:
                found += _targets(node.get(key))
    elif isinstance(node, ListConfig):
        for item in node:
            found += _targets(item)
    return found


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_resolves(experiment: str, tmp_path: Path):
    cfg = compose_config(f"experiment={experiment}", output_dir=tmp_path)
    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    container = OmegaConf.to_container(job, resolve=True)  # every interpolation resolves
    assert container["task_name"], "each experiment names itself (run dirs and wandb groups use it)"
    targets = _targets(job)
    assert targets, "an experiment instantiates something"
    for target in targets:
        get_object(target)  # raises if the class/function does not exist


def test_experiment_list_is_not_empty():
    assert {"smoke", "default_cifar10_lt"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("group", ["model", "optimizer", "scheduler", "loss", "logger", "trainer", "data"])
def test_every_group_member_composes(group: str, tmp_path: Path):
    for option in sorted((CONFIG_DIR / group).glob("*.yaml")):
        cfg = compose_config(f"{group}={option.stem}", output_dir=tmp_path)
        for target in _targets(cfg[group]):
            get_object(target)
