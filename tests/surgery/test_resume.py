"""Resuming from a checkpoint taken in the middle of an accumulation window gives the same decisions."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from neurogrow.models.module import LongTailClassifier
from neurogrow.surgery.callback import NeuronSurgery
from neurogrow.surgery.events import EVENTS_FILE, read_events
from tests.conftest import make_module, make_trainer
from tests.surgery.conftest import COUNTS, tiny_long_tail


def classifier() -> LongTailClassifier:
    return make_module(class_counts=COUNTS, backbone_kwargs={"widths": (8, 16, 16)})


def surgery() -> NeuronSurgery:
    # Events at the end of epochs 1 and 3, each after accumulating over two epochs (0-1 and 2-3).
    return NeuronSurgery(
        schedule={"start_epoch": 1, "interval": 2, "accumulate_epochs": 2, "num_events": 2},
        ratio=0.2,
        gda={"noise": 0.05},
    )


def run(
    run_dir: Path, max_epochs: int, ckpt_path: Path | None = None, save: bool = False
) -> LongTailClassifier:
    callbacks: list[L.Callback] = [surgery()]
    if save:
        callbacks.append(
            ModelCheckpoint(
                dirpath=run_dir / "checkpoints",
                filename="epoch{epoch}",
                save_top_k=-1,
                every_n_epochs=1,
                save_on_train_epoch_end=True,
            )
        )
    trainer = make_trainer(
        callbacks,
        max_epochs=max_epochs,
        default_root_dir=run_dir,
        enable_checkpointing=save,
        limit_val_batches=0,
    )
    module = classifier()
    trainer.fit(module, datamodule=tiny_long_tail(), ckpt_path=ckpt_path)  # weights_only, as the CLI
    return module


def decisions(run_dir: Path) -> list[tuple[int, list]]:
    return [
        (e["epoch"], [(g["name"], g["sources"], g["removed"]) for g in e["groups"]])
        for e in read_events(run_dir)
    ]


@pytest.mark.slow
def test_resume_mid_accumulation_matches_uninterrupted_run(tmp_path: Path) -> None:
    straight = run(tmp_path / "straight", max_epochs=4)
    # Stop after epoch 0: the checkpoint holds half of the first accumulation window.
    run(tmp_path / "first", max_epochs=1, save=True)
    (ckpt,) = (tmp_path / "first" / "checkpoints").glob("*.ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    (cb_state,) = [v for k, v in state["callbacks"].items() if k.startswith("NeuronSurgery")]
    assert cb_state["accumulator"]["steps"] == 3 and cb_state["window"] == 1 and cb_state["event_count"] == 0
    resumed = run(tmp_path / "resumed", max_epochs=4, ckpt_path=ckpt)

    expected = decisions(tmp_path / "straight")
    assert [epoch for epoch, _ in expected] == [1, 3]
    assert decisions(tmp_path / "resumed") == expected
    for (name, a), b in zip(straight.model.named_parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_resume_into_the_same_directory_writes_one_setup_record(tmp_path: Path) -> None:
    run(tmp_path, max_epochs=1, save=True)
    (ckpt,) = (tmp_path / "checkpoints").glob("*.ckpt")
    run(tmp_path, max_epochs=2, ckpt_path=ckpt)
    records = [json.loads(line) for line in (tmp_path / EVENTS_FILE).read_text().splitlines()]
    assert [r["type"] for r in records] == ["setup", "event"]  # the event at the end of epoch 1
