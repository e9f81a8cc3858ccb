"""The data-pipeline benchmark runs end to end and writes its table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "data_pipeline.py"


@pytest.mark.slow
def test_benchmark_reports_the_data_share(cifar10_offline, tmp_path):
    spec = importlib.util.spec_from_file_location("data_pipeline", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "result.txt"
    text = bench.main(
        [
            "--device=cpu",
            "--steps=2",
            "--warmup=1",
            "--batch-size=16",
            "--pil-batches=1",
            f"--data-dir={cifar10_offline['data_dir']}",
            f"--shared-data-dir={cifar10_offline['shared_data_dir']}",
            f"--out={out}",
        ]
    )
    assert out.read_text() == text
    assert "share of a training step waiting for data:" in text and "12406 training images" in text
