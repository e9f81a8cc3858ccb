"""A non-editable install runs `neurogrow-train experiment=smoke` from outside the repository.

The fresh virtual environment sees the project's installed dependencies through a `.pth` file (no
network), and the project itself is installed from a copy of its sources with `--no-deps`, so what runs
is only what the wheel ships: the package and the configs it carries as `neurogrow.conf`.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONFIG_DIR, REPO_ROOT

# What `pip install .` reads; copying only these keeps stale build/ folders and the venv out of the wheel.
SOURCES = ("neurogrow", "conf", "pyproject.toml", "setup.py", "README.md")


def _uv() -> str:
    """The Makefile's installer: uv on PATH or the one `make install` bootstraps into .tools/."""
    local = REPO_ROOT / ".tools" / "bin" / "uv"
    uv = shutil.which("uv") or (str(local) if local.exists() else None)
    if uv is None:
        pytest.skip("uv is needed to install the project (make install bootstraps it into .tools/)")
    return uv


def _fresh_venv(root: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Dependencies only: a path line is appended to sys.path; the .pth files there (e.g. an editable
    # neurogrow) are not run, so the project itself comes from this venv's own site-packages.
    (Path(purelib) / "_neurogrow_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


@pytest.mark.slow
def test_non_editable_install_runs_the_smoke_experiment_outside_the_repo(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    python = _fresh_venv(tmp_path / "venv")
    install = subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "--offline",
            "--python",
            str(python),
            "--no-deps",
            "--no-build-isolation",
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import neurogrow, neurogrow.conf; print(neurogrow.__file__, neurogrow.conf.__file__)",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    site_dir = tmp_path / "venv"
    assert all(Path(p).resolve().is_relative_to(site_dir.resolve()) for p in where), where
    installed_conf = Path(where[1]).parent
    shipped = {p.relative_to(installed_conf) for p in installed_conf.rglob("*.yaml")}
    assert shipped == {p.relative_to(CONFIG_DIR) for p in CONFIG_DIR.rglob("*.yaml")}
    package = REPO_ROOT / "neurogrow"
    data_files = {p.relative_to(package) for p in package.rglob("*.yaml")}  # e.g. report's paper results
    assert all((installed_conf.parent / p).is_file() for p in data_files), data_files

    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [
            str(python.parent / "neurogrow-train"),
            "experiment=smoke",
            "logger=csv",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **os.environ,
            "WANDB_SILENT": "true",
            "HYDRA_FULL_ERROR": "0",
            # what a user of an installed neurogrow sets (README): where the datasets are
            "NEUROGROW_DATA": str(REPO_ROOT / "data"),
            "NEUROGROW_SHARED_DATA": str(REPO_ROOT.parent / "shared" / "data"),
        },
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test/acc"] <= 1.0 and len(metrics["test/acc_per_class"]) == 10
    assert not (elsewhere / "outputs").exists() and not (elsewhere / "data").exists()
