"""Checks of the composed config that need nothing loaded, run before any data or model is built.

Whatever would otherwise fail after training (the `test_ckpt` value) or with another library's words
(`seed=abc`) fails here, first, in one line that names the key.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from neurogrow.errors import UserError, UserFileNotFoundError

__all__ = ["check_config"]

TEST_CKPT_CHOICES = ("last", "best")


def _integer(value: object, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{key} must be an integer, got {value!r}; e.g. {key}=0.")


def _number(value: object, key: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{key} must be a number, got {value!r}; e.g. {key}=100.")


def check_config(cfg: DictConfig) -> None:
    """Raise `UserError` for a config value that is wrong whatever the data and model are."""
    _integer(cfg.get("seed"), "seed")
    data = cfg.get("data") or {}
    for key in ("imbalance_factor", "img_max"):
        if key in data:
            _number(data.get(key), f"data.{key}")
    for key in ("seed", "batch_size"):
        if key in data:
            _integer(data.get(key), f"data.{key}")
    if data.get("eval_batch_size") is not None:
        _integer(data.eval_batch_size, "data.eval_batch_size")
        if data.eval_batch_size < 1:
            raise UserError(
                f"data.eval_batch_size must be >= 1, got {data.eval_batch_size}; null uses data.batch_size."
            )
    test_ckpt = cfg.get("test_ckpt")
    if test_ckpt not in TEST_CKPT_CHOICES:
        if not isinstance(test_ckpt, str) or not test_ckpt:
            raise UserError(
                f"test_ckpt must be one of {TEST_CKPT_CHOICES} or a checkpoint file, got {test_ckpt!r}."
            )
        if not Path(test_ckpt).expanduser().is_file():
            raise UserFileNotFoundError(
                f"test_ckpt={test_ckpt}: no such checkpoint file; use test_ckpt=last, test_ckpt=best or the "
                f"path of a .ckpt file."
            )
    if test_ckpt == "best":
        monitor = ((cfg.get("callbacks") or {}).get("model_checkpoint") or {}).get("monitor")
        if not monitor:
            raise UserError(
                "test_ckpt=best needs a monitored metric to pick the best checkpoint: set "
                "callbacks.model_checkpoint.monitor (e.g. val/acc with data.val_per_class=20)."
            )
