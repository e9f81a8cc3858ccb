"""`neurogrow export`: the file, loaded as the command says, predicts exactly as the trained module."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from neurogrow.cli.tool import main as tool_main
from neurogrow.models.module import LongTailClassifier
from tests.conftest import run_cli

COUNTS = [50, 40, 30, 20, 10]

# The paper's architectures. Shrunk only through timm arguments that leave the small-input path alone:
# VGG's 7x7 MLP head (102 M parameters at mlp_ratio=1), and ViT-Base to one block.
ARCHITECTURES = {
    "vgg19_bn": {"mlp_ratio": 1 / 64},
    "resnet18": {},
    "convformer_s18": {},
    "caformer_s18": {},
    "vit_base_patch16_224": {"depth": 1},
    "mambaout_femto": {},
}


def save_checkpoint(module: LongTailClassifier, path: Path) -> Path:
    """What Lightning writes for the module (state dict and hyper-parameters)."""
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path


def printed_code(stdout: str) -> str:
    return "\n".join(line[4:] for line in stdout.splitlines() if line.startswith("    "))


@pytest.mark.slow
@pytest.mark.parametrize("small_input", [False, True], ids=["plain", "small_input"])
@pytest.mark.parametrize("backbone", list(ARCHITECTURES))
def test_export_loaded_as_printed_predicts_like_the_trained_module(
    tmp_path: Path, capsys: pytest.CaptureFixture, backbone: str, small_input: bool
) -> None:
    torch.manual_seed(0)
    module = LongTailClassifier(
        backbone,
        len(COUNTS),
        COUNTS,
        small_input=small_input,
        backbone_kwargs=ARCHITECTURES[backbone],
    ).eval()
    ckpt = save_checkpoint(module, tmp_path / "last.ckpt")
    out = tmp_path / "model.safetensors"

    assert tool_main(["export", str(ckpt), str(out)]) == 0  # `neurogrow export <ckpt> <out>`
    stdout = capsys.readouterr().out
    assert "timm.create_model keyword arguments" in stdout
    namespace: dict = {}
    exec(printed_code(stdout), namespace)  # exactly what the command told the user to run
    model = namespace["model"].eval()

    size = 32 if small_input else (224 if backbone.startswith("vit") else 64)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(model(x), module(x), rtol=0, atol=0)


@pytest.mark.slow
def test_export_command_prints_the_timm_arguments(tmp_path: Path) -> None:
    module = LongTailClassifier(
        "vit_base_patch16_224", 5, COUNTS, small_input=True, backbone_kwargs={"depth": 1}
    )
    ckpt = save_checkpoint(module, tmp_path / "last.ckpt")
    proc = run_cli("neurogrow", "export", str(ckpt), str(tmp_path / "vit.safetensors"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "timm.create_model('vit_base_patch16_224', num_classes=5, img_size=32, patch_size=4, depth=1)" in (
        proc.stdout
    )


class _CreatesFile:
    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _bad_checkpoint(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.ckpt"
    if kind == "random":
        path.write_bytes(random.Random(0).randbytes(4096))
    elif kind == "truncated":
        save_checkpoint(LongTailClassifier("resnet20_cifar", 5, COUNTS), path)
        path.write_bytes(path.read_bytes()[:-2000])
    elif kind == "mismatched":  # weights of a ResNet-20, hyper-parameters of a ResNet-32
        module = LongTailClassifier("resnet20_cifar", 5, COUNTS)
        hparams = {**dict(module.hparams), "backbone": "resnet32_cifar"}
        torch.save({"state_dict": module.state_dict(), "hyper_parameters": hparams}, path)
    elif kind == "crafted":
        torch.save({"state_dict": {}, "payload": _CreatesFile(tmp_path / "pwned")}, path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("random", "not a readable checkpoint"),
        ("truncated", "not a readable checkpoint"),
        ("mismatched", "do not fit the resnet32_cifar"),
        ("crafted", "--trust"),
    ],
)
def test_export_of_a_bad_checkpoint_fails_in_one_line(tmp_path: Path, kind: str, says: str) -> None:
    bad = _bad_checkpoint(tmp_path, kind)
    proc = run_cli("neurogrow", "export", str(bad), str(tmp_path / "out.safetensors"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    (line,) = proc.stderr.strip().splitlines()
    assert str(bad) in line and says in line, line
    assert not (tmp_path / "out.safetensors").exists()
    assert not (tmp_path / "pwned").exists()  # the crafted file's code never ran


def test_a_legacy_checkpoint_with_pickled_classes_exports_only_with_trust(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from neurogrow.models.schedules import WarmupConstant

    module = LongTailClassifier("resnet20_cifar", 5, COUNTS)
    ckpt = tmp_path / "legacy.ckpt"
    # What neurogrow wrote before its LR schedule became a plain function: a pickled schedule object.
    legacy_scheduler = {"lr_lambdas": [{"schedule": WarmupConstant(max_epochs=1), "steps_per_epoch": 1}]}
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "lr_schedulers": [legacy_scheduler],
        },
        ckpt,
    )
    out = tmp_path / "model.safetensors"
    with pytest.raises(SystemExit) as exited:
        tool_main(["export", str(ckpt), str(out)])
    assert exited.value.code == 2
    message = capsys.readouterr().err
    assert "WarmupConstant" in message and "--trust" in message and not out.exists()
    assert tool_main(["export", "--trust", str(ckpt), str(out)]) == 0
    assert out.is_file()
