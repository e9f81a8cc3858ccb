"""Export a trained checkpoint's backbone as a timm state dict (safetensors) that predicts as trained.

Neuron surgery never changes a shape, so the trained backbone *is* the architecture it started as. Export
rebuilds it from the checkpoint's hyper-parameters, loads the weights with `strict=True`, and records in the
file's metadata the exact `timm.create_model` keyword arguments (`timm_kwargs`). Where the small-input
adaptation is a stem edit after creation (ResNet, MetaFormer and MambaOut stems) plain timm arguments
cannot express it: the metadata names the edit (`adaptation`) and `load_exported(path)` rebuilds it.
`Export.instructions()` is the code the `neurogrow export` command prints for the user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from neurogrow.errors import UserError, UserFileNotFoundError
from neurogrow.models.checkpoints import CheckpointError, load_checkpoint

__all__ = ["Export", "backbone_from_checkpoint", "backbone_state_dict", "export_checkpoint", "load_exported"]

_PREFIX = "model."
_TRUST_HINT = "pass --trust to `neurogrow export`"


def _load(checkpoint: Path, trust: bool = False) -> dict[str, Any]:
    if not checkpoint.is_file():
        raise UserFileNotFoundError(
            f"checkpoint {checkpoint} does not exist; "
            "pass a Lightning .ckpt such as <run>/checkpoints/last.ckpt"
        )
    ckpt = load_checkpoint(checkpoint, trust=trust, trust_hint=_TRUST_HINT)
    if "state_dict" not in ckpt:
        raise CheckpointError(f"{checkpoint} is not a Lightning checkpoint (no 'state_dict' entry)")
    return ckpt


def backbone_settings(ckpt: dict[str, Any]) -> dict[str, Any]:
    """`create_backbone` arguments saved by `LongTailClassifier.save_hyperparameters()`."""
    hp = dict(ckpt.get("hyper_parameters") or {})
    missing = [k for k in ("backbone", "num_classes") if k not in hp]
    if missing:
        raise CheckpointError(
            f"the checkpoint's hyper_parameters lack {missing}; export needs a checkpoint written by "
            "neurogrow.models.module.LongTailClassifier"
        )
    return {
        "name": str(hp["backbone"]),
        "num_classes": int(hp["num_classes"]),
        "small_input": bool(hp.get("small_input", False)),
        "kwargs": dict(hp.get("backbone_kwargs") or {}),
    }


def backbone_state_dict(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The backbone's tensors, keyed as in the bare timm model."""
    out = {}
    for key, value in ckpt["state_dict"].items():
        if not key.startswith(_PREFIX):
            continue  # loss buffers, metric states, ...
        key = key[len(_PREFIX) :]
        key = key.removeprefix("_orig_mod.")
        out[key] = value.detach().cpu().contiguous()
    if not out:
        raise CheckpointError("the checkpoint's state_dict has no 'model.*' entries (no backbone to export)")
    return out


def _build(settings: dict[str, Any], state: dict[str, torch.Tensor], source: Path) -> nn.Module:
    from neurogrow.models.backbone import create_backbone

    model = create_backbone(
        settings["name"], settings["num_classes"], small_input=settings["small_input"], **settings["kwargs"]
    )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # weights of another architecture than the hyper-parameters describe
        first = str(err).strip().splitlines()[-1].strip()[:160]
        raise CheckpointError(
            f"{source}: the weights do not fit the {settings['name']} the checkpoint describes ({first}); "
            "export a checkpoint written by neurogrow-train, unmodified"
        ) from None
    return model.eval()


def backbone_from_checkpoint(checkpoint: str | Path, *, trust: bool = False) -> nn.Module:
    """Rebuild the trained backbone (the bare timm model) from a Lightning checkpoint, strictly."""
    checkpoint = Path(checkpoint)
    ckpt = _load(checkpoint, trust)
    return _build(backbone_settings(ckpt), backbone_state_dict(ckpt), checkpoint)


@dataclass(frozen=True)
class Export:
    """What was written, and how to rebuild the network from it."""

    path: Path
    model_name: str
    timm_kwargs: dict[str, Any]
    adaptation: str | None  # the stem edit plain timm arguments cannot express, or None

    def instructions(self) -> str:
        """Python code that rebuilds the trained network from the file (what `neurogrow export` prints)."""
        if self.adaptation is not None:
            return (
                f"the small-input adaptation ({self.adaptation}) is not a timm.create_model argument; "
                "rebuild the network with neurogrow:\n"
                "    from neurogrow.models import load_exported\n"
                f"    model = load_exported({str(self.path)!r})"
            )
        args = ", ".join([repr(self.model_name), *(f"{k}={v!r}" for k, v in self.timm_kwargs.items())])
        register = "    import neurogrow.models  # registers neurogrow's CIFAR ResNets with timm\n"
        return (
            "rebuild the network with plain timm:\n"
            "    import timm\n"
            "    from safetensors.torch import load_file\n"
            + (register if self.model_name.endswith("_cifar") else "")
            + f"    model = timm.create_model({args})\n"
            f"    model.load_state_dict(load_file({str(self.path)!r}))\n"
            "    model.eval()"
        )


def export_checkpoint(checkpoint: str | Path, out: str | Path, *, trust: bool = False) -> Export:
    """Write the backbone of `checkpoint` to `out` (safetensors) with how to rebuild it in the metadata."""
    from neurogrow.models.backbone import stem_adaptation, timm_create_kwargs

    checkpoint, out = Path(checkpoint), Path(out)
    if out.suffix != ".safetensors":
        raise UserError(f"the export target must end in .safetensors, got {out}")
    ckpt = _load(checkpoint, trust)
    settings = backbone_settings(ckpt)
    model = _build(settings, backbone_state_dict(ckpt), checkpoint)  # fails here, not at the user's load
    timm_kwargs = timm_create_kwargs(
        settings["name"], settings["num_classes"], small_input=settings["small_input"], **settings["kwargs"]
    )
    adaptation = stem_adaptation(settings["name"], type(model), settings["small_input"])
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": "pt",
        "backbone": settings["name"],
        "num_classes": str(settings["num_classes"]),
        "small_input": json.dumps(settings["small_input"]),
        "backbone_kwargs": json.dumps(settings["kwargs"]),
        "timm_kwargs": json.dumps(timm_kwargs),
        "adaptation": json.dumps(adaptation),
        "source_checkpoint": str(checkpoint),
    }
    save_file(state, str(out), metadata=metadata)
    return Export(out, settings["name"], timm_kwargs, adaptation)


def load_exported(path: str | Path) -> nn.Module:
    """Rebuild an exported network (small-input stem edits included) and load its weights strictly."""
    path = Path(path)
    if not path.is_file():
        raise UserFileNotFoundError(f"no exported model at {path}; write one with `neurogrow export`")
    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata() or {}
    if "backbone" not in meta:
        raise UserError(f"{path} has no neurogrow export metadata (backbone, num_classes, small_input)")
    settings = {
        "name": meta["backbone"],
        "num_classes": int(meta["num_classes"]),
        "small_input": json.loads(meta.get("small_input", "false")),
        "kwargs": json.loads(meta.get("backbone_kwargs", "{}")),
    }
    return _build(settings, load_file(str(path)), path)
