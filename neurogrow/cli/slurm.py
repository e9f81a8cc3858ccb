"""SLURM: resources derived from the trainer, and resuming a requeued job from its own `last.ckpt`.

submitit requeues a job on pre-emption and (up to `max_num_timeout` times) on timeout, calling it again
with the same pickled config; Hydra copies the config's resolver cache into each job, so the
`${now:...}` of the sweep directory, and with it the job's run directory, is the same after a requeue.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from neurogrow.errors import UserError

__all__ = ["RESUME_CHOICES", "register_resolvers", "resume_checkpoint"]

log = logging.getLogger("neurogrow")
RESUME_CHOICES = ("requeue", "auto", "never")


def _device_count(devices: Any) -> int:
    if isinstance(devices, int):
        return devices
    if isinstance(devices, Sequence) and not isinstance(devices, str):
        return len(devices)
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        return int(devices)
    raise UserError(
        f"trainer.devices={devices!r}: under hydra/launcher=slurm give the devices per node as a number, "
        "e.g. trainer.devices=4"
    )


def gpus_per_node(accelerator: str, devices: Any) -> int:
    """GPUs to request: `trainer.devices` on a GPU accelerator, none on CPU."""
    return _device_count(devices) if str(accelerator) in ("gpu", "cuda", "auto") else 0


def tasks_per_node(devices: Any) -> int:
    """One task per device: Lightning's SLURM DDP expects ntasks-per-node == devices."""
    return _device_count(devices)


def register_resolvers() -> None:
    """`${slurm_gpus:${trainer.accelerator},${trainer.devices}}` and `${slurm_tasks:${trainer.devices}}`."""
    OmegaConf.register_new_resolver("slurm_gpus", gpus_per_node, replace=True)
    OmegaConf.register_new_resolver("slurm_tasks", tasks_per_node, replace=True)


def resume_checkpoint(run_dir: Path, ckpt_path: str | None, resume: str) -> str | None:
    """The checkpoint to resume from: `ckpt_path` if set; else the run's own `checkpoints/last.ckpt`
    when this is a requeued SLURM job (`resume=requeue`, the default) or whenever it exists (`auto`)."""
    if resume not in RESUME_CHOICES:
        raise UserError(f"resume={resume!r}: choose one of {', '.join(RESUME_CHOICES)}")
    if ckpt_path:
        return ckpt_path
    last = run_dir / "checkpoints" / "last.ckpt"
    requeued = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0
    if last.is_file() and (resume == "auto" or (resume == "requeue" and requeued)):
        why = "requeued SLURM job" if requeued else "resume=auto"
        log.info("resuming from %s (%s)", last, why)
        return str(last)
    return None
