"""Every notebook in notebooks/ executes (nbclient, a real kernel) on run directories, so none can rot."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT
from tests.report.conftest import write_run

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def execute(path: Path, run_dirs: list[Path], monkeypatch) -> nbformat.NotebookNode:
    """Run `path` with its `parameters` cell pointed at `run_dirs` (papermill-style); returns the result."""
    nb = nbformat.read(path, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{path.name}: one cell tagged 'parameters' holds RUN_DIRS"
    assert "RUN_DIRS" in params[0].source
    params[0].source += f"\nRUN_DIRS = {[str(p) for p in run_dirs]!r}\n"
    # the kernelspec runs `python`: make it this interpreter (the project's venv)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return nb


def _outputs(nb: nbformat.NotebookNode) -> tuple[str, int]:
    text, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            text.append(out.get("text", "") + data.get("text/markdown", "") + data.get("text/plain", ""))
            images += "image/png" in data
    return "\n".join(text), images


def test_notebooks_exist():
    assert {p.name for p in NOTEBOOKS} == {
        "compare_runs.ipynb",
        "per_class_accuracy.ipynb",
        "surgery_events.ipynb",
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_on_run_directories(path: Path, tmp_path: Path, monkeypatch):
    for seed, (conv, surg) in enumerate([(0.70, 0.73), (0.72, 0.74), (0.74, 0.78)]):
        write_run(tmp_path / "conventional" / str(seed), seed=seed, acc=conv)
        write_run(tmp_path / "surgery" / str(seed), seed=seed, acc=surg, surgery={"ratio": 0.1}, events=2)
    nb = execute(path, [tmp_path], monkeypatch)
    text, images = _outputs(nb)
    assert images >= 1
    if path.stem == "compare_runs":
        assert "+3.00 [+0.52, +5.48]" in text  # the paired difference, as neurogrow report computes it
    elif path.stem == "per_class_accuracy":
        assert "| 0 | 5000 | 72.0 | 75.0 |" in text
    else:
        assert "3 run(s) with a surgery event log" in text and "| layer0 | +2/-2 | +0/-0 |" in text


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_on_a_real_sweep(path: Path, sweep, monkeypatch):
    root, _ = sweep
    nb = execute(path, [root], monkeypatch)
    text, images = _outputs(nb)
    assert images >= 1 and "Traceback" not in text
