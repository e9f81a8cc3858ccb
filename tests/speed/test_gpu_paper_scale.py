"""The GPU paper-scale script's code path, run on the CPU in its tiny `--cpu-smoke` mode, so it cannot rot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli


@pytest.mark.slow
def test_gpu_paper_scale_cpu_smoke_trains_both_models_and_arms_and_reports(tmp_path: Path):
    results, scratch = tmp_path / "gpu_paper_scale", tmp_path / "runs"
    script = [sys.executable, "benchmarks/gpu_paper_scale.py"]
    args = ["--cpu-smoke", "--results", str(results), "--scratch", str(scratch)]
    proc = run_cli(script, *args, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for model in ("resnet32_cifar", "resnet18"):
        for arm in ("conventional", "surgery"):
            run = results / model / f"{arm}_seed0"
            assert 0.0 <= json.loads((run / "metrics.json").read_text())["test/acc"] <= 1.0
            info = json.loads((run / "run.json").read_text())
            assert (info["arm"], info["seed"], info["epochs"]) == (arm, 0, 2)
            config = yaml.safe_load((run / "config.yaml").read_text())
            assert config["model"]["backbone"] == model and config["model"]["channels_last"] is True
            assert ("surgery" in config["callbacks"]) == (arm == "surgery")
            assert not list(run.rglob("*.ckpt")), "slim copies hold no checkpoints"
        assert list((scratch / model / "surgery_seed0" / "checkpoints").glob("*.ckpt"))
        report = (tmp_path / f"gpu_paper_scale_{model}.md").read_text()
        assert "conventional" in report and "surgery" in report
        assert (results / model / "pairing.json").is_file()
    # a rerun finds every run finished and trains nothing
    proc = run_cli(script, *args, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("2 of 2 runs already finished") == 2
