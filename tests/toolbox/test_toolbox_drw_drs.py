"""DRW / DRS switch at the configured epoch in real Trainer runs."""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from neurogrow.callbacks.deferred import DeferredResampling, DeferredReweighting
from neurogrow.data.samplers import DeferredResampler
from neurogrow.losses import class_weights
from tests.conftest import COUNTS, TinyLongTailData, make_module, make_trainer


class Probe(Callback):
    """Records what each training batch sees: the loss weights and the batch labels, per epoch."""

    def __init__(self) -> None:
        self.weights: dict[int, torch.Tensor | None] = {}
        self.labels: dict[int, list[int]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        w = pl_module.criterion.class_weights
        self.weights[trainer.current_epoch] = None if w is None else w.clone()
        self.labels.setdefault(trainer.current_epoch, []).extend(batch[1].tolist())


def test_drw_switches_loss_weights_at_start_epoch(tiny_data) -> None:
    probe = Probe()
    drw = DeferredReweighting(start_epoch=2, scheme="effective_number", beta=0.999)
    module = make_module()
    make_trainer([drw, probe], max_epochs=4, limit_train_batches=2, limit_val_batches=1).fit(
        module, tiny_data
    )
    assert probe.weights[0] is None and probe.weights[1] is None
    expected = class_weights(COUNTS, "effective_number", 0.999)
    for epoch in (2, 3):
        assert torch.allclose(probe.weights[epoch], expected)
    assert expected[-1] > expected[0]  # the rarest class gets the largest weight


def test_drw_rejects_a_module_without_longtail_loss(tiny_data) -> None:
    module = make_module()
    module.criterion = torch.nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match="LongTailLoss"):
        make_trainer([DeferredReweighting(start_epoch=1)], max_epochs=1, limit_train_batches=1).fit(
            module, tiny_data
        )


def test_drs_switches_sampling_at_start_epoch() -> None:
    probe = Probe()
    data = TinyLongTailData(batch_size=38, sampler=partial(DeferredResampler, start_epoch=2, seed=0))
    make_trainer([DeferredResampling(), probe], max_epochs=4, limit_val_batches=1).fit(make_module(), data)
    for epoch in (0, 1):  # instance-balanced: one pass over the data, each sample once
        assert torch.bincount(torch.tensor(probe.labels[epoch]), minlength=4).tolist() == COUNTS
    late = torch.bincount(torch.tensor(probe.labels[2] + probe.labels[3]), minlength=4)
    assert late[3] > 4 * COUNTS[3]  # the 2-sample class now drawn ~19 times per epoch instead of twice
    assert late[0] < 2 * COUNTS[0]


def test_drs_callback_requires_the_deferred_sampler(tiny_data) -> None:
    with pytest.raises(ValueError, match="DeferredResampler"):
        make_trainer([DeferredResampling()], max_epochs=1, limit_train_batches=1).fit(
            make_module(), tiny_data
        )


class RecordSampler(Callback):
    """Each rank writes the sampler Lightning actually iterates and the indices it draws this epoch."""

    def __init__(self, out_dir) -> None:
        self.out_dir = out_dir

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        sampler = trainer.train_dataloader.sampler
        record = {"type": type(sampler).__name__, "replicas": sampler.num_replicas, "indices": list(sampler)}
        (self.out_dir / f"rank{trainer.global_rank}_epoch{trainer.current_epoch}.json").write_text(
            json.dumps(record)
        )


@pytest.fixture
def file_system_sharing():
    """ddp_spawn pickles the module; file-system sharing works in sandboxes where fd sharing fails."""
    import torch.multiprocessing as mp

    old = mp.get_sharing_strategy()
    mp.set_sharing_strategy("file_system")
    yield
    mp.set_sharing_strategy(old)


@pytest.mark.slow
@pytest.mark.usefixtures("file_system_sharing")
def test_ddp_ranks_draw_disjoint_shares_and_lightning_keeps_the_sampler(tmp_path) -> None:
    data = TinyLongTailData(batch_size=8, sampler=partial(DeferredResampler, start_epoch=1, seed=0))
    trainer = make_trainer(
        [RecordSampler(tmp_path)],
        max_epochs=2,
        devices=2,
        strategy="ddp_spawn",
        limit_train_batches=1,
        limit_val_batches=0,
    )
    trainer.fit(make_module(), data)
    n = len(data.train_labels)
    for epoch in (0, 1):
        ranks = [json.loads((tmp_path / f"rank{r}_epoch{epoch}.json").read_text()) for r in (0, 1)]
        assert [r["type"] for r in ranks] == ["DeferredResampler"] * 2  # not wrapped by Lightning
        assert [r["replicas"] for r in ranks] == [2, 2]
        assert len(ranks[0]["indices"]) == len(ranks[1]["indices"]) == n // 2
        reference = DeferredResampler(labels=data.train_labels, start_epoch=1, seed=0, num_replicas=1, rank=0)
        reference.set_epoch(epoch)
        merged = [i for pair in zip(ranks[0]["indices"], ranks[1]["indices"]) for i in pair]
        assert merged == list(reference)  # disjoint positions of one epoch-seeded global draw
    epoch0 = [json.loads((tmp_path / f"rank{r}_epoch0.json").read_text())["indices"] for r in (0, 1)]
    assert sorted(epoch0[0] + epoch0[1]) == list(range(n))  # before the switch: each sample once overall
