"""Shared test factories, used by every test folder (keep the names stable: other folders import them).

- `compose_config(*overrides)` / `run_experiment` fixture: a real experiment through Hydra's compose API.
- `TinyLongTailData`: an in-memory long-tailed datamodule (random 8x8 images, `COUNTS` per class) that
  follows the datamodule contract (`class_counts`, `train_labels`, a sampler partial); fixture `tiny_data`.
- `make_module(loss=...)`: a real `LongTailClassifier` over timm's `resnet20_cifar`, seeded.
- `make_trainer(callbacks, max_epochs, **kwargs)`: a quiet CPU Lightning Trainer (no logger, checkpoints,
  progress bar or sanity check); kwargs go to `lightning.Trainer`.
- `run_cli("neurogrow-train", *args, **env)`: an installed console script run as a user runs it (a
  subprocess from the repository root, output captured as text); `console_script`, `cli_env` for the
  tests that drive the process themselves (kill it mid-epoch, stream its output).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from torch.utils.data import DataLoader, TensorDataset

from neurogrow.models.module import LongTailClassifier
from neurogrow.precision import register_resolvers

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "conf"


def console_script(name: str) -> str:
    """The installed console script `name` (`neurogrow-train`, `neurogrow`) beside this interpreter."""
    return str(Path(sys.executable).with_name(name))


def cli_env(**extra: str) -> dict[str, str]:
    """A user's environment for a CLI run: wandb quiet, Hydra's one-line errors, the progress display
    chosen by the terminal test (stdout is a pipe here, as under SLURM); `extra` on top."""
    env = {**os.environ, "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0"}
    env.pop("NEUROGROW_PROGRESS", None)
    return {**env, **extra}


def run_cli(
    command: str | Sequence[str], *args: str, timeout: int = 900, **env: str
) -> subprocess.CompletedProcess:
    """`command args...` from the repository root with output captured as text. `command` is a console
    script name (what a user types) or a full argv prefix (`[sys.executable, "-m", ...]`, a benchmark)."""
    argv = [console_script(command)] if isinstance(command, str) else list(command)
    return subprocess.run(
        [*argv, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=cli_env(**env)
    )


def compose_config(*overrides: str, output_dir: Path | None = None) -> DictConfig:
    """Compose `conf/train.yaml` with overrides as `neurogrow-train` would, rooted at the repo."""
    register_resolvers()  # as importing the train entry does
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


COUNTS = [24, 8, 4, 2]  # step-free long tail over 4 classes


class TinyLongTailData(L.LightningDataModule):
    """Random images with long-tailed labels; follows the datamodule contract (sampler partial).

    `separable` shifts each image by its label so a model can learn the classes; `shuffle=False` keeps the
    training order sorted by class (reproducible runs; under DDP each rank then sees another class mix).
    """

    def __init__(
        self,
        class_counts: Sequence[int] = COUNTS,
        batch_size: int = 8,
        sampler=None,
        image_size: int = 8,
        shuffle: bool = True,
        separable: bool = True,
    ) -> None:
        super().__init__()
        self.class_counts = list(class_counts)
        self.num_classes = len(self.class_counts)
        self.class_names = [f"c{i}" for i in range(self.num_classes)]
        self.batch_size, self.sampler, self.shuffle = batch_size, sampler, shuffle
        g = torch.Generator().manual_seed(0)
        self.train_labels = torch.repeat_interleave(
            torch.arange(self.num_classes), torch.tensor(self.class_counts)
        )
        self.train_images = torch.randn(len(self.train_labels), 3, image_size, image_size, generator=g)
        if separable:
            self.train_images += self.train_labels.view(-1, 1, 1, 1).float()
        self.test_labels = torch.arange(self.num_classes).repeat(4)
        self.test_images = torch.randn(len(self.test_labels), 3, image_size, image_size, generator=g)

    def train_dataloader(self) -> DataLoader:
        dataset = TensorDataset(self.train_images, self.train_labels)
        if self.sampler is None:
            return DataLoader(dataset, batch_size=self.batch_size, shuffle=self.shuffle)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=self.sampler(labels=self.train_labels))

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.test_images, self.test_labels), batch_size=self.batch_size)

    test_dataloader = val_dataloader


def make_module(
    loss: Callable | None = None,
    class_counts: Sequence[int] = COUNTS,
    backbone: str = "resnet20_cifar",
    backbone_kwargs: dict | None = None,
    optimizer: Callable | None = None,
) -> LongTailClassifier:
    """A seeded `LongTailClassifier` (SGD lr 0.05 unless `optimizer` is given)."""
    torch.manual_seed(0)
    return LongTailClassifier(
        backbone=backbone,
        num_classes=len(class_counts),
        class_counts=list(class_counts),
        loss=loss,
        backbone_kwargs=backbone_kwargs,
        optimizer=optimizer or partial(torch.optim.SGD, lr=0.05, momentum=0.9),
    )


def make_trainer(callbacks: Sequence | None = None, max_epochs: int = 2, **kwargs) -> L.Trainer:
    """A quiet CPU Trainer; any `lightning.Trainer` argument in kwargs overrides these defaults."""
    options = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    return L.Trainer(max_epochs=max_epochs, callbacks=list(callbacks or []), **{**options, **kwargs})


@pytest.fixture
def tiny_data() -> TinyLongTailData:
    return TinyLongTailData()
