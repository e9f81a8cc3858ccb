"""Run the real console scripts as a user does (subprocess), with small budgets."""

from __future__ import annotations

import subprocess

from tests.conftest import run_cli

TINY = (
    "experiment=smoke",
    "logger=csv",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
)


def train(*args: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """`neurogrow-train <args>`; stderr/stdout captured as text."""
    return run_cli("neurogrow-train", *args, timeout=timeout, **env)
