"""`experiment=smoke surgery=default` end to end: events are written and the export loads strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from neurogrow.cli.tool import main as tool_main
from neurogrow.models.export import export_checkpoint
from neurogrow.models.module import LongTailClassifier
from neurogrow.surgery.events import read_events


@pytest.mark.slow
def test_smoke_run_with_surgery_writes_events_and_exports_strictly(run_experiment, tmp_path: Path) -> None:
    run_dir = run_experiment(
        "experiment=smoke",
        "surgery=default",
        "callbacks.surgery.schedule.start_epoch=0",
        "callbacks.surgery.schedule.interval=1",
        "trainer.limit_test_batches=2",
    )
    events = read_events(run_dir)
    assert [e["epoch"] for e in events] == [0, 1]  # smoke runs 2 epochs: one event at the end of each
    assert all(e["added"] == e["removed"] > 0 for e in events)
    setup = json.loads((run_dir / "surgery_events.jsonl").read_text().splitlines()[0])
    assert setup["type"] == "setup" and setup["excluded"] == {}  # every ResNet-32 group verified
    assert len(setup["groups"]) == 15  # one inner width per basic block
    metrics = (next(run_dir.rglob("metrics.csv"))).read_text()
    assert "surgery/neurons_total" in metrics and "surgery/event_seconds" in metrics

    ckpt = run_dir / "checkpoints" / "last.ckpt"
    out = tmp_path / "resnet32.safetensors"
    assert tool_main(["export", str(ckpt), str(out)]) == 0  # `neurogrow export <ckpt> <out>`
    state = load_file(out)
    with safe_open(out, "pt") as f:
        meta = f.metadata()
    assert meta["backbone"] == "resnet32_cifar" and meta["num_classes"] == "10"

    model = timm.create_model("resnet32_cifar", num_classes=10)
    model.load_state_dict(state, strict=True)
    module = LongTailClassifier.load_from_checkpoint(ckpt, map_location="cpu", weights_only=False)
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), module.eval()(x), rtol=0, atol=0)


def test_export_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_checkpoint(tmp_path / "missing.ckpt", tmp_path / "out.safetensors")
    bogus = tmp_path / "bogus.ckpt"
    torch.save({"weights": torch.zeros(1)}, bogus)
    with pytest.raises(ValueError, match="not a Lightning checkpoint"):
        export_checkpoint(bogus, tmp_path / "out.safetensors")
    with pytest.raises(ValueError, match=r"\.safetensors"):
        export_checkpoint(bogus, tmp_path / "out.pt")
