"""CIFAR ResNets (He et al. 2016, Sec. 4.2) as registered timm models.

The long-tailed literature's CIFAR backbone is ResNet-32: a 3x3 stem of 16 channels, three stages of
five basic blocks (16/32/64 channels), global average pooling and a linear classifier (0.46M
parameters), with the parameter-free "option A" shortcut of LDAM-DRW's `resnet_cifar.py`.
Registering it with timm means every other part of neurogrow creates it like any timm model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.layers import SelectAdaptivePool2d
from timm.models import register_model
from timm.models.resnet import BasicBlock
from torch import nn

from neurogrow.errors import UserError

__all__ = [
    "CifarResNet",
    "PadShortcut",
    "resnet20_cifar",
    "resnet32_cifar",
    "resnet44_cifar",
    "resnet56_cifar",
]


class PadShortcut(nn.Module):
    """Option-A shortcut: subsample spatially and zero-pad new channels (no parameters)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.pad = out_chs - in_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        half = self.pad // 2
        return F.pad(x, (0, 0, 0, 0, half, self.pad - half))


class CifarResNet(nn.Module):
    """ResNet for 32x32 inputs with the timm model interface."""

    def __init__(
        self,
        depths: Sequence[int] = (5, 5, 5),
        widths: Sequence[int] = (16, 32, 64),
        num_classes: int = 10,
        in_chans: int = 3,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
        **_: object,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.num_features = self.head_hidden_size = widths[-1]
        self.grad_checkpointing = False
        self.conv1 = nn.Conv2d(in_chans, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.act1 = nn.ReLU(inplace=True)
        stages: list[nn.Module] = []
        in_chs = widths[0]
        self.feature_info = [dict(num_chs=widths[0], reduction=1, module="act1")]
        for i, (depth, width) in enumerate(zip(depths, widths)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(depth):
                s = stride if j == 0 else 1
                shortcut = PadShortcut(in_chs, width, s) if (s != 1 or in_chs != width) else None
                blocks.append(BasicBlock(in_chs, width, stride=s, downsample=shortcut))
                in_chs = width
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=width, reduction=2**i, module=f"layer{i + 1}"))
        self.layer1, self.layer2, self.layer3 = stages
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str = "avg") -> None:
        self.num_classes = num_classes
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate:
            x = F.dropout(x, p=float(self.drop_rate), training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs: object) -> dict:
    return {
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": (8, 8),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": (0.4914, 0.4822, 0.4465),
        "std": (0.2023, 0.1994, 0.2010),
        "first_conv": "conv1",
        "classifier": "fc",
        "architecture": "cifar_resnet",
        **kwargs,
    }


def _create(depth: int, pretrained: bool, **kwargs: object) -> CifarResNet:
    if pretrained:
        raise UserError(f"resnet{depth}_cifar has no pretrained weights; set pretrained=false")
    n = (depth - 2) // 6
    model = CifarResNet(depths=(n, n, n), **kwargs)
    model.pretrained_cfg = model.default_cfg = _cfg()
    return model


@register_model
def resnet20_cifar(pretrained: bool = False, **kwargs: object) -> CifarResNet:
    """ResNet-20 for CIFAR (3 stages x 3 basic blocks)."""
    return _create(20, pretrained, **kwargs)


@register_model
def resnet32_cifar(pretrained: bool = False, **kwargs: object) -> CifarResNet:
    """ResNet-32 for CIFAR (3 stages x 5 basic blocks, 16/32/64 channels): the LT literature's standard."""
    return _create(32, pretrained, **kwargs)


@register_model
def resnet44_cifar(pretrained: bool = False, **kwargs: object) -> CifarResNet:
    """ResNet-44 for CIFAR (3 stages x 7 basic blocks)."""
    return _create(44, pretrained, **kwargs)


@register_model
def resnet56_cifar(pretrained: bool = False, **kwargs: object) -> CifarResNet:
    """ResNet-56 for CIFAR (3 stages x 9 basic blocks)."""
    return _create(56, pretrained, **kwargs)
