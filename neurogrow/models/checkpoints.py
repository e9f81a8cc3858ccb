"""Reading and writing checkpoints safely.

Reading: `torch.load(weights_only=True)` everywhere, so a crafted file can never run code; a checkpoint that
needs more (pickled classes, as neurogrow's LR schedules were before) loads only with an explicit trust
option, and a corrupt, truncated or random file gives one line naming the file and what to do.

Writing: `AtomicCheckpointIO` writes to a temporary file in the checkpoint's own directory, fsyncs it and
renames it over the target, so a kill at any moment leaves either the previous complete file or the new one
(never a truncated `last.ckpt`), and no temporary file survives a failed write.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from neurogrow.errors import UserError, UserFileNotFoundError

__all__ = ["AtomicCheckpointIO", "CheckpointError", "load_checkpoint", "save_atomic"]


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded (safely); the message names the file and what to do."""


_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")

# What torch.load raises for files that are not (complete) torch checkpoints.
_CORRUPT = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError)


def load_checkpoint(path: str | Path, *, trust: bool = False, trust_hint: str = "") -> dict[str, Any]:
    """`torch.load(path)` on the CPU with `weights_only=not trust`, failing with a one-line `CheckpointError`.

    `trust_hint` tells the user how to allow full unpickling for this command (e.g. "pass --trust").
    """
    path = Path(path)
    if not path.is_file():
        raise UserFileNotFoundError(
            f"no checkpoint at {path}; pass a .ckpt file such as <run>/checkpoints/last.ckpt"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=not trust)
    except _CORRUPT as err:
        raise _load_error(path, err, trust_hint) from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} is not a training checkpoint (it holds a {type(checkpoint).__name__})")
    return checkpoint


def _load_error(path: Path, err: BaseException, trust_hint: str) -> CheckpointError:
    unsafe = _UNSAFE_GLOBAL.search(str(err))
    if unsafe:
        return CheckpointError(
            f"{path} holds the pickled Python object {unsafe.group(1)} (checkpoints of older neurogrow "
            "versions do), and unpickling it could run code from the file; if you trust the file, "
            f"{trust_hint or 'load it with full unpickling'}"
        )
    reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
    if "Weights only load failed" in str(err) or "WeightsUnpickler" in str(err):
        reason = "not a torch checkpoint"
    return CheckpointError(
        f"{path} is not a readable checkpoint (corrupt, truncated or not a torch file: {reason[:120]}); "
        "use another checkpoint of the run, e.g. an epoch_*.ckpt next to it"
    )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO with crash-safe writes and one-line errors on unreadable files."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        save_atomic(checkpoint, Path(path))

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        trust = weights_only is False
        return load_checkpoint(path, trust=trust, trust_hint="set trust_checkpoint=true")


def save_atomic(payload: Any, path: Path) -> None:
    """`torch.save` to a temporary file beside `path`, fsync, rename over `path`, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for orphan in path.parent.glob(f".{path.name}.*.tmp"):  # left by a process killed while writing
        with contextlib.suppress(FileNotFoundError):
            orphan.unlink()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a checkpoint is as readable as any file
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
