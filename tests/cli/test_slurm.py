"""`hydra/launcher=slurm`: the sbatch script submitit renders from the composed config, and resuming a
requeued job from its own last.ckpt."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from neurogrow.cli.slurm import gpus_per_node, resume_checkpoint, tasks_per_node
from tests.conftest import compose_config, run_cli


def _launcher(*overrides: str) -> dict:
    """`neurogrow-train ... --cfg all --resolve`, the launcher part (`--cfg hydra` alone cannot resolve
    `${trainer.devices}`, which lives outside the hydra node)."""
    proc = run_cli(
        "neurogrow-train", "hydra/launcher=slurm", *overrides, "--cfg", "all", "--resolve", timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return yaml.safe_load(proc.stdout)["hydra"]["launcher"]


def _sbatch(launcher: dict, tmp_path: Path, monkeypatch) -> str:
    """The sbatch script hydra-submitit-launcher would submit for these settings (same parameter mapping)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    fake_bin = tmp_path / "bin"  # submitit refuses to build a Slurm executor where `srun` is missing
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{os.environ['PATH']}")
    params = {
        k: v for k, v in launcher.items() if k not in ("_target_", "submitit_folder", "max_num_timeout")
    }
    executor = submitit.AutoExecutor(
        folder=tmp_path / "submitit", cluster="slurm", slurm_max_num_timeout=launcher["max_num_timeout"]
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    assert executor._executor.max_num_timeout == 3  # timeouts are requeued
    return executor._executor._make_submission_file_text("python -m neurogrow.cli.train", "uid")


@pytest.mark.parametrize("devices", [1, 4])
def test_slurm_job_asks_for_one_task_per_gpu(devices: int, tmp_path: Path, monkeypatch):
    launcher = _launcher("trainer=ddp", f"trainer.devices={devices}")
    assert launcher["gpus_per_node"] == devices and launcher["tasks_per_node"] == devices
    script = _sbatch(launcher, tmp_path, monkeypatch)
    assert f"#SBATCH --gpus-per-node={devices}" in script
    assert f"#SBATCH --ntasks-per-node={devices}" in script
    assert "#SBATCH --signal=USR2@120" in script  # submitit's pre-emption/timeout signal -> requeue


def test_cpu_trainer_asks_for_no_gpu():
    assert gpus_per_node("cpu", 2) == 0 and tasks_per_node(2) == 2
    assert gpus_per_node("gpu", [0, 1, 2]) == 3
    with pytest.raises(ValueError, match=r"trainer.devices=4"):
        tasks_per_node("auto")


def test_resume_choices(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    (tmp_path / "checkpoints").mkdir()
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.write_bytes(b"x")
    assert resume_checkpoint(tmp_path, None, "requeue") is None  # a first submission starts fresh
    assert resume_checkpoint(tmp_path, None, "auto") == str(last)
    assert resume_checkpoint(tmp_path, "other.ckpt", "auto") == "other.ckpt"  # explicit ckpt_path wins
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert resume_checkpoint(tmp_path, None, "requeue") == str(last)
    assert resume_checkpoint(tmp_path, None, "never") is None
    with pytest.raises(ValueError, match="requeue, auto, never"):
        resume_checkpoint(tmp_path, None, "yes")


@pytest.mark.slow
def test_a_requeued_job_continues_from_its_last_checkpoint(tmp_path: Path, monkeypatch, caplog):
    """First submission: 1 epoch. Requeued (SLURM_RESTART_COUNT=1) in the same run directory with the
    full budget of 2 epochs: Lightning restores last.ckpt and trains epoch 1 only."""
    from neurogrow.cli.train import train

    tiny = [
        "experiment=smoke",
        "logger=csv",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
    ]
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    train(compose_config(*tiny, "trainer.max_epochs=1", output_dir=tmp_path))
    first = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert first["epoch"] == 0 and first["global_step"] == 2

    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        train(compose_config(*tiny, "trainer.max_epochs=2", output_dir=tmp_path))
    messages = "\n".join(r.getMessage() for r in caplog.records)
    assert f"resuming from {tmp_path / 'checkpoints' / 'last.ckpt'} (requeued SLURM job)" in messages
    assert "Restored all states from the checkpoint" in messages  # Lightning's own confirmation
    second = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert second["epoch"] == 1 and second["global_step"] == 4
