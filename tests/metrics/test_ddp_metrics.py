"""Under DDP the metric states are summed over ranks before the accuracies are computed."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from neurogrow.metrics import LongTailAccuracy

COUNTS = [1000, 50, 5]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    metric = LongTailAccuracy(COUNTS)
    if rank == 0:  # rank 0: 3 samples of class 0, all right
        target, preds = torch.tensor([0, 0, 0]), torch.tensor([0, 0, 0])
    else:  # rank 1: 1 sample of class 0 wrong, 2 of class 2 right
        target, preds = torch.tensor([0, 2, 2]), torch.tensor([1, 2, 2])
    metric.update(preds, target)
    out[rank] = {k: v.tolist() for k, v in metric.compute().items()}
    dist.destroy_process_group()


def test_metrics_are_synced_not_averaged_per_rank():
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_worker, args=(_free_port(), out), nprocs=2, join=True)
        results = dict(out)
    assert repr(results[0]) == repr(results[1])  # repr: per_class holds NaN (class 1 not evaluated)
    assert "acc_medium" not in results[0]  # its only class had no sample on any rank
    # global: class 0 is 3/4 right, class 2 is 2/2 right -> top-1 5/6, Many 0.75, Few 1.0. Averaging
    # per-rank results instead would give class 0 (1 + 0) / 2 = 0.5.
    assert abs(results[0]["acc"] - 5 / 6) < 1e-6
    assert abs(results[0]["acc_many"] - 0.75) < 1e-6
    assert abs(results[0]["acc_few"] - 1.0) < 1e-6
