"""Run the real console scripts as a user does (subprocess), with small budgets."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

TRAIN = [sys.executable, "-m", "neurogrow.cli.train"]
TINY = (
    "experiment=smoke",
    "logger=csv",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
)


def train(*args: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """`neurogrow-train <args>`; stderr/stdout captured as text."""
    full_env = {**os.environ, "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0", **env}
    return subprocess.run(
        [*TRAIN, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=full_env
    )
