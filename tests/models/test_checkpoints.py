"""`AtomicCheckpointIO`: a checkpoint on disk is always complete, whatever happens during a write."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from neurogrow.models.checkpoints import AtomicCheckpointIO, CheckpointError, load_checkpoint


class _FailsToPickle:
    def __reduce__(self):
        raise OSError("No space left on device")  # what a full disk does to a write in progress


def leftovers(directory: Path, keep: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != keep)


def test_a_failed_write_keeps_the_previous_checkpoint_and_no_temporary_file(tmp_path: Path) -> None:
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 0, "w": torch.ones(3)}, path)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"epoch": 1, "w": torch.zeros(100_000), "bad": _FailsToPickle()}, path)
    previous = io.load_checkpoint(path)
    assert previous["epoch"] == 0 and torch.equal(previous["w"], torch.ones(3))
    assert leftovers(tmp_path, "last.ckpt") == []
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as readable as any file the user writes


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_give_one_clear_checkpoint_error(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "random.ckpt"
    path.write_bytes(random.Random(seed).randbytes(random.Random(seed).randint(1, 8192)))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


_WRITER = textwrap.dedent(
    """
    import sys, torch
    from neurogrow.models.checkpoints import AtomicCheckpointIO
    io, epoch = AtomicCheckpointIO(), 0
    while True:  # a large checkpoint rewritten forever, as last.ckpt is every epoch
        io.save_checkpoint({"epoch": epoch, "w": torch.full((4_000_000,), float(epoch))}, sys.argv[1])
        epoch += 1
    """
)


@pytest.mark.slow
def test_a_kill_while_writing_leaves_a_complete_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    env = dict(os.environ)
    if os.path.isdir("/dev/shm") and os.stat("/dev/shm").st_dev != tmp_path.stat().st_dev:
        env["TMPDIR"] = "/dev/shm"  # another filesystem: a temporary file there cannot be renamed over
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], env=env)
    try:
        deadline = time.monotonic() + 300
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # several writes later, most likely in the middle of one
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(state["w"], torch.full((4_000_000,), float(state["epoch"])))
    # The next save (the resumed run's) removes what the killed writer left behind.
    AtomicCheckpointIO().save_checkpoint({"epoch": -1}, path)
    assert leftovers(tmp_path, "last.ckpt") == []
