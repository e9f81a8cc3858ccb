"""`neurogrow coverage` on a real (small) timm model, its JSON contract, and clear errors for bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from neurogrow.cli.tool import main
from tests.conftest import run_cli


def test_coverage_json_for_resnet20_cifar(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", "--models", "resnet20_cifar", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1
    row = rows[0]
    assert {"model", "groups", "verified", "excluded", "max_abs_diff"} <= set(row)
    assert row["model"] == "resnet20_cifar"
    assert row["groups"] == row["verified"] == 9 and row["excluded"] == 0  # one group per basic block
    assert row["max_abs_diff"] >= 0 and row["rel_diff"] <= 1e-4 and row["preserved"]


def test_coverage_table_and_noise(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", "--models", "resnet20_cifar", "--noise", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| model |")
    line = next(row for row in out.splitlines() if row.startswith("| resnet20_cifar"))
    assert "| NO |" in line  # GDA noise changes the function, as it should


def test_unknown_model_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["coverage", "--models", "resnet18,not_a_model"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown timm model(s): not_a_model" in err and "Traceback" not in err


@pytest.mark.slow  # a fresh interpreter imports torch, timm and Lightning
def test_module_entry_point_and_missing_checkpoint(tmp_path: Path) -> None:
    result = run_cli(
        [sys.executable, "-m", "neurogrow.cli.tool"],
        "export",
        str(tmp_path / "none.ckpt"),
        str(tmp_path / "o"),
    )
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
