"""Shared fixtures: run a real experiment in-process through Hydra's compose API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "conf"


def compose_config(*overrides: str, output_dir: Path | None = None) -> DictConfig:
    """Compose `conf/train.yaml` with overrides as `neurogrow-train` would, rooted at the repo."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(REPO_ROOT)
        if output_dir is not None:
            cfg.paths.output_dir = str(output_dir)
            cfg.hydra.runtime.output_dir = str(output_dir)
            cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)  # so ${hydra:...} interpolations resolve as in a real run
    return cfg


@pytest.fixture
def run_experiment(tmp_path: Path) -> Callable[..., Path]:
    """`run_experiment("experiment=smoke", "loss=ldam")` -> the run directory, after a real fit + test."""
    from neurogrow.cli.train import train

    counter = iter(range(1000))

    def run(*overrides: str) -> Path:
        run_dir = tmp_path / f"run{next(counter)}"
        if not any(o.lstrip("+~").startswith("logger=") for o in overrides):
            overrides = ("logger=csv", *overrides)  # wandb is tested on its own; keep the rest fast
        cfg = compose_config(*overrides, output_dir=run_dir)
        train(cfg)
        return run_dir

    return run
