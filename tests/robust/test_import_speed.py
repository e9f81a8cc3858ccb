"""`import neurogrow` and the CLIs' `--help` do not load timm, torchvision or Lightning."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

HEAVY = ("timm", "torchvision", "lightning", "torch", "matplotlib")


def _loaded_after(code: str) -> dict[str, bool]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_neurogrow_is_light() -> None:
    loaded = _loaded_after("import neurogrow; neurogrow.__version__")
    assert not any(loaded.values()), loaded


@pytest.mark.parametrize(
    "code",
    [
        "from neurogrow.cli.tool import build_parser; build_parser().format_help()",
        "import neurogrow.cli.train",
    ],
    ids=["neurogrow", "neurogrow-train"],
)
def test_cli_modules_load_without_timm_torchvision_lightning(code: str) -> None:
    loaded = _loaded_after(code)
    assert not (loaded["timm"] or loaded["torchvision"] or loaded["lightning"]), loaded


def test_subpackages_stay_reachable_lazily() -> None:
    loaded = _loaded_after("import neurogrow; neurogrow.models.LongTailClassifier")
    assert loaded["timm"] and loaded["lightning"]
