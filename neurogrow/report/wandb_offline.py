"""Read an offline wandb run (`<run dir>/wandb/offline-run-*/run-*.wandb`) without uploading it.

The file is a LevelDB-style log of protobuf `Record`s (wandb's own format): 7-byte file header, 32 KiB
blocks, each chunk `crc32 | length | type` then bytes. Used to check what a run sends to wandb and to
render the dashboard of `docs/wandb.md` from a real run.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["OfflineRun", "find_offline_run", "read_offline_run"]

_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    id: str = ""
    name: str = ""
    group: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # top-level keys -> values
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _records(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    ident, _magic, _version = struct.unpack("<4sHB", data[:7])
    if ident != b":W&B":
        raise ValueError(f"{path} is not a wandb run file")
    pos, buf = 7, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        if kind == 0 and length == 0:
            continue
        buf += data[pos : pos + length]
        pos += length
        if kind in (_FULL, _LAST):
            yield buf
            buf = b""


def _items(items) -> dict[str, Any]:
    out = {}
    for item in items:
        key = item.key or "/".join(item.nested_key)
        try:
            out[key] = json.loads(item.value_json)
        except ValueError:
            out[key] = item.value_json
    return out


def find_offline_run(run_dir: str | Path) -> Path:
    """The newest `run-*.wandb` file of a run directory."""
    files = sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no offline wandb run under {run_dir}/wandb (was it run with logger=wandb?)")
    return files[-1]


def read_offline_run(path: str | Path) -> OfflineRun:
    """Name, group, tags, config, history rows and final summary of an offline run (file or run dir)."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    if path.is_dir():
        path = find_offline_run(path)
    run = OfflineRun()
    for raw in _records(path):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.id, run.name, run.group, run.tags = (
                record.run.run_id,
                record.run.display_name,
                record.run.run_group,
                list(record.run.tags),
            )
            run.config.update(_items(record.run.config.update))
        elif kind == "config":
            run.config.update(_items(record.config.update))
        elif kind == "history":
            run.history.append(_items(record.history.item))
        elif kind == "summary":
            run.summary.update(_items(record.summary.update))
    return run
