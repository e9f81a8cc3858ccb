"""MambaOut's ``GatedConvBlock``: ``fc2(act(g) * cat(i, dwconv(c)))`` with ``g, i, c = split(fc1(x))``.

Hidden unit j (of H) is fc1 row j (the gate g_j), fc1 row H + j (its value, i_j or c_j), for the last
``conv_channels`` units also depthwise-conv channel j - (H - conv_channels), and fc2 column j. Units with and
without the convolution are not interchangeable, so each block has two groups: ``<block>.gated_i`` and
``<block>.gated_c`` (kind ``gated_hidden``). Torch-Pruning follows the split but not the gating product.
"""

from __future__ import annotations

import torch
from timm.models.mambaout import GatedConvBlock
from torch import nn

from neurogrow.surgery.types import NeuronGroup, TensorSlice


class GatedConvBlockHandler:
    def matches(self, module: nn.Module) -> bool:
        return isinstance(module, GatedConvBlock)

    def owned(self, module: nn.Module) -> list[nn.Module]:
        return [module.fc1, module.conv, module.fc2]

    def groups(self, name: str, module: nn.Module) -> tuple[list[NeuronGroup], dict[str, str]]:
        hidden, n_identity, _ = module.split_indices
        p = f"{name}." if name else ""
        fc1_bias = module.fc1.bias is not None
        conv_bias = module.conv.bias is not None
        groups, excluded = [], {}
        for suffix, units, conv in (
            ("gated_i", torch.arange(n_identity), False),
            ("gated_c", torch.arange(n_identity, hidden), True),
        ):
            gname = f"{p}{suffix}"
            if len(units) < 2:
                if len(units):
                    excluded[gname] = "fewer than 2 neurons"
                continue
            slices = [
                TensorSlice(p + "fc1.weight", 0, units, "out"),
                TensorSlice(p + "fc1.weight", 0, units + hidden, "out"),
            ]
            if fc1_bias:
                slices += [
                    TensorSlice(p + "fc1.bias", 0, units, "out"),
                    TensorSlice(p + "fc1.bias", 0, units + hidden, "out"),
                ]
            if conv:
                slices.append(TensorSlice(p + "conv.weight", 0, units - n_identity, "channel"))
                if conv_bias:
                    slices.append(TensorSlice(p + "conv.bias", 0, units - n_identity, "channel"))
            slices.append(TensorSlice(p + "fc2.weight", 1, units.clone(), "in"))
            groups.append(NeuronGroup(gname, "gated_hidden", len(units), tuple(slices)))
        return groups, excluded
