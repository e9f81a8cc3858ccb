"""Export a trained checkpoint's backbone as a plain timm state dict (safetensors).

Neuron surgery never changes a shape, so the trained backbone *is* the original architecture: export only
strips the LightningModule's `model.` prefix (and `torch.compile`'s `_orig_mod.`), rebuilds the backbone
from the checkpoint's hyper-parameters and loads the weights with `strict=True` before writing, so a file
is only written if it is known to load into `timm.create_model(name, num_classes=C, ...)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from neurogrow.errors import UserError, UserFileNotFoundError

__all__ = ["backbone_from_checkpoint", "backbone_state_dict", "export_checkpoint"]

_PREFIX = "model."


def _load(checkpoint: Path) -> dict[str, Any]:
    if not checkpoint.is_file():
        raise UserFileNotFoundError(
            f"checkpoint {checkpoint} does not exist; "
            "pass a Lightning .ckpt such as <run>/checkpoints/last.ckpt"
        )
    # Lightning checkpoints hold hyper-parameters and optimizer state, not just tensors: trusted files only.
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UserError(f"{checkpoint} is not a Lightning checkpoint (no 'state_dict' entry)")
    return ckpt


def backbone_settings(ckpt: dict[str, Any]) -> dict[str, Any]:
    """`create_backbone` arguments saved by `LongTailClassifier.save_hyperparameters()`."""
    hp = dict(ckpt.get("hyper_parameters") or {})
    missing = [k for k in ("backbone", "num_classes") if k not in hp]
    if missing:
        raise UserError(
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
        raise UserError("the checkpoint's state_dict has no 'model.*' entries (no backbone to export)")
    return out


def backbone_from_checkpoint(checkpoint: str | Path) -> nn.Module:
    """Rebuild the trained backbone (the bare timm model) from a Lightning checkpoint, strictly."""
    from neurogrow.models.backbone import create_backbone

    ckpt = _load(Path(checkpoint))
    settings = backbone_settings(ckpt)
    model = create_backbone(
        settings["name"], settings["num_classes"], small_input=settings["small_input"], **settings["kwargs"]
    )
    model.load_state_dict(backbone_state_dict(ckpt), strict=True)
    return model.eval()


def export_checkpoint(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the backbone of `checkpoint` to `out` (safetensors) and return the path.

    The file's metadata records how to rebuild the architecture (`backbone`, `num_classes`, `small_input`,
    `backbone_kwargs` as JSON) so `create_backbone(...)` / `timm.create_model(...)` can load it strictly.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    if out.suffix != ".safetensors":
        raise UserError(f"the export target must end in .safetensors, got {out}")
    ckpt = _load(checkpoint)
    settings = backbone_settings(ckpt)
    model = backbone_from_checkpoint(checkpoint)  # fails here, not at the user's load, if keys mismatch
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": "pt",
        "backbone": settings["name"],
        "num_classes": str(settings["num_classes"]),
        "small_input": json.dumps(settings["small_input"]),
        "backbone_kwargs": json.dumps(settings["kwargs"]),
        "source_checkpoint": str(checkpoint),
    }
    save_file(state, str(out), metadata=metadata)
    return out
