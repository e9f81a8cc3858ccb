"""Two CPU processes (gloo): every rank makes the same surgery decisions and ends with identical weights."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning as L
import pytest

from neurogrow.surgery.callback import NeuronSurgery
from neurogrow.surgery.events import read_events
from tests.conftest import make_module, make_trainer
from tests.surgery.conftest import COUNTS, tiny_long_tail


class RecordWeights(L.Callback):
    """After the surgery callback: each rank writes a hash of its parameters and its event count."""

    def __init__(self, out_dir: Path, surgery: NeuronSurgery) -> None:
        self.out_dir, self.surgery = out_dir, surgery

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        digest = hashlib.sha256()
        # Parameters only: BatchNorm running statistics legitimately differ between ranks until DDP
        # broadcasts rank 0's buffers at the next forward.
        for k, v in sorted(pl_module.model.named_parameters()):
            digest.update(k.encode())
            digest.update(v.detach().cpu().numpy().tobytes())
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "epoch": trainer.current_epoch,
            "hash": digest.hexdigest(),
            "events": self.surgery.event_count,
        }
        path = self.out_dir / f"rank{trainer.global_rank}_epoch{trainer.current_epoch}.json"
        path.write_text(json.dumps(record))


@pytest.fixture
def file_system_sharing():
    """ddp_spawn pickles the module to the workers; fd-based sharing of empty storages fails in some
    sandboxes ("unable to resize file"), file-system sharing works everywhere."""
    import torch.multiprocessing as mp

    old = mp.get_sharing_strategy()
    mp.set_sharing_strategy("file_system")
    yield
    mp.set_sharing_strategy(old)


@pytest.mark.slow
@pytest.mark.usefixtures("file_system_sharing")
def test_two_ranks_make_identical_decisions(tmp_path: Path) -> None:
    """accum_grad with GR and GDA noise: w_b differs per rank (own labels); decisions and noise must not."""
    module = make_module(class_counts=COUNTS, backbone_kwargs={"widths": (8, 16, 16)})
    surgery = NeuronSurgery(schedule={"start_epoch": 0, "interval": 1}, ratio=0.2, gda={"noise": 0.05})
    trainer = make_trainer(
        [surgery, RecordWeights(tmp_path, surgery)],
        devices=2,
        strategy="ddp_spawn",
        default_root_dir=tmp_path,
        limit_val_batches=0,
    )
    trainer.fit(module, datamodule=tiny_long_tail(batch_size=8))

    for epoch in (0, 1):
        records = [json.loads((tmp_path / f"rank{r}_epoch{epoch}.json").read_text()) for r in (0, 1)]
        assert [r["world_size"] for r in records] == [2, 2]
        assert records[0]["events"] == records[1]["events"] == epoch + 1
        assert records[0]["hash"] == records[1]["hash"], f"ranks diverged after the event of epoch {epoch}"
    events = read_events(tmp_path)  # written by rank 0 only: one record per event, not one per rank
    assert [e["epoch"] for e in events] == [0, 1]
    assert all(e["added"] > 0 for e in events)
