"""Create any timm backbone by name, with an optional small-input (32x32) adaptation.

Small-input adaptation follows what the CIFAR literature does for each family: ResNets get a 3x3
stride-1 stem without max-pool; MetaFormers (ConvFormer/CAFormer/PoolFormer) and MambaOut keep their
stem weights but run them at stride 1; ViT-style models are created with `img_size=32, patch_size=4`.
The same call rebuilds the architecture for export, so a trained state dict loads with `strict=True`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import timm
from timm.models import mambaout, metaformer, model_entrypoint, resnet, vgg, vision_transformer
from torch import nn

import neurogrow.models.cifar_resnet as cifar_resnet
from neurogrow.errors import UserError

__all__ = [
    "UnknownBackboneError",
    "check_backbone_name",
    "create_backbone",
    "stem_adaptation",
    "timm_create_kwargs",
]


class UnknownBackboneError(UserError):
    """The backbone name is not a timm model."""


def _resnet_stem(model: resnet.ResNet) -> None:
    """ResNet stem replaced by a 3x3 stride-1 conv1 without max-pool (conv1 weights have a new shape)"""
    if not isinstance(model.conv1, nn.Conv2d):
        raise UserError("small_input supports ResNets with a single-conv stem (stem_type=''), not deep stems")
    model.conv1 = nn.Conv2d(model.conv1.in_channels, model.conv1.out_channels, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()


def _stride_one_stem(*convs: nn.Conv2d) -> None:
    for conv in convs:
        conv.stride = (1, 1)
        conv.padding = (conv.kernel_size[0] // 2, conv.kernel_size[1] // 2)


def _nothing(model: nn.Module) -> None:
    """Already suited to 32x32 inputs (CIFAR ResNets; VGG's head pools small maps itself)."""


def _metaformer_stem(model: metaformer.MetaFormer) -> None:
    """MetaFormer stem conv run at stride 1 with 'same' padding (weights unchanged)"""
    _stride_one_stem(model.stem.conv)


def _mambaout_stem(model: mambaout.MambaOut) -> None:
    """MambaOut stem conv1 and conv2 run at stride 1 with 'same' padding (weights unchanged)"""
    _stride_one_stem(model.stem.conv1, model.stem.conv2)


# Post-creation stem edits, by model class. Their docstrings say what plain timm arguments cannot express.
_STEM_ADAPTERS: dict[type, Callable[[Any], None]] = {
    cifar_resnet.CifarResNet: _nothing,
    vgg.VGG: _nothing,
    resnet.ResNet: _resnet_stem,
    metaformer.MetaFormer: _metaformer_stem,
    mambaout.MambaOut: _mambaout_stem,
}
# Creation-time arguments, by the timm module that defines the model (patch-embedding models must be
# built for the input size; the module is known from the name without building the model).
_CREATE_KWARGS: dict[str, dict[str, Any]] = {
    vision_transformer.__name__: {"img_size": 32, "patch_size": 4},
}


def _lookup(table: dict[type, Any], cls: type) -> Any:
    for base in cls.__mro__:
        if base in table:
            return table[base]
    return None


def _defining_module(name: str) -> str:
    return model_entrypoint(name).__module__


def check_backbone_name(name: str) -> None:
    """Raise a helpful error for a name timm does not know, suggesting close ones."""
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownBackboneError(
        f"Unknown backbone {name!r}: not a timm model.{hint} "
        "List names with `python -c \"import timm; print(timm.list_models('resnet*'))\"`."
    )


def timm_create_kwargs(name: str, num_classes: int, *, small_input: bool = False, **kwargs: Any) -> dict:
    """The exact `timm.create_model(name, **these)` arguments `create_backbone` uses (before a stem edit)."""
    check_backbone_name(name)
    if num_classes < 1:
        raise UserError(f"num_classes must be >= 1, got {num_classes}")
    size_kwargs = _CREATE_KWARGS.get(_defining_module(name)) if small_input else None
    return {"num_classes": num_classes, **(size_kwargs or {}), **kwargs}


def stem_adaptation(name: str, model_type: type, small_input: bool) -> str | None:
    """What `create_backbone` changes after `timm.create_model` (None: plain timm rebuilds the model)."""
    if not small_input or _CREATE_KWARGS.get(_defining_module(name)):
        return None
    adapter = _lookup(_STEM_ADAPTERS, model_type)
    if adapter is None or adapter is _nothing:
        return None
    return (adapter.__doc__ or adapter.__name__).strip()


def create_backbone(
    name: str,
    num_classes: int,
    *,
    pretrained: bool = False,
    small_input: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """`timm.create_model(name, num_classes=...)`, adapted to 32x32 inputs when `small_input`."""
    create_kwargs = timm_create_kwargs(name, num_classes, small_input=small_input, **kwargs)
    model = timm.create_model(name, pretrained=pretrained, **create_kwargs)
    if small_input and not _CREATE_KWARGS.get(_defining_module(name)):
        adapter = _lookup(_STEM_ADAPTERS, type(model))
        if adapter is None:
            raise UserError(
                f"small_input is not supported for {name!r} ({type(model).__name__}); pass the size-related "
                "arguments in model.backbone_kwargs (e.g. img_size=32) and set model.small_input=false"
            )
        adapter(model)
    return model
