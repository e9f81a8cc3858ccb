"""Fused-qkv self-attention (timm ViT/DeiT ``Attention``, MetaFormer ``Attention``, Swin ``WindowAttention``).

The forward of all of them is ``qkv(x).reshape(B, N, 3, heads, head_dim)``, so row ``c * D + h * hd + j`` of
``qkv`` is dimension j of head h of q (c=0), k (c=1) or v (c=2), and column ``h * hd + j`` of ``proj`` reads
v's dimension j of head h. Heads are never added or removed; within each head, two groups:

* ``<attn>.qk.head<h>`` (kind ``attn_qk``): q row and k row of dimension j enter the logits only as the
  product q_j k_j, so they form one neuron (role ``qk``);
* ``<attn>.v.head<h>`` (kind ``attn_v``): v row j (``out``) and proj column (``in``).

Torch-Pruning couples the whole qkv output to proj through the reshape, which mixes q, k and v.
"""

from __future__ import annotations

import torch
from torch import nn

from neurogrow.surgery.types import NeuronGroup, Role, TensorSlice


def _identity(module: nn.Module | None) -> bool:
    return module is None or isinstance(module, nn.Identity)


class FusedQKVAttentionHandler:
    def matches(self, module: nn.Module) -> bool:
        qkv, proj, heads = (getattr(module, a, None) for a in ("qkv", "proj", "num_heads"))
        return (
            isinstance(qkv, nn.Linear)
            and isinstance(proj, nn.Linear)
            and isinstance(heads, int)
            and qkv.out_features == 3 * proj.in_features
            and proj.in_features % heads == 0
        )

    def owned(self, module: nn.Module) -> list[nn.Module]:
        return [module.qkv, module.proj]

    def groups(self, name: str, module: nn.Module) -> tuple[list[NeuronGroup], dict[str, str]]:
        heads = module.num_heads
        dim = module.proj.in_features
        hd = dim // heads
        p = f"{name}." if name else ""
        has_bias = module.qkv.bias is not None
        gate = getattr(module, "gate", None)
        qk_ok = _identity(getattr(module, "q_norm", None)) and _identity(getattr(module, "k_norm", None))
        v_ok = _identity(getattr(module, "norm", None)) and (gate is None or isinstance(gate, nn.Linear))
        groups, excluded = [], {}
        for h in range(heads):
            j = torch.arange(hd) + h * hd

            def rows(offset: int, role: Role, j: torch.Tensor = j) -> list[TensorSlice]:
                out = [TensorSlice(p + "qkv.weight", 0, j + offset, role)]
                return out + ([TensorSlice(p + "qkv.bias", 0, j + offset, role)] if has_bias else [])

            qk_name, v_name = f"{p}qk.head{h}", f"{p}v.head{h}"
            if hd < 2:
                excluded[qk_name] = excluded[v_name] = "head dimension < 2"
                continue
            if qk_ok:
                groups.append(NeuronGroup(qk_name, "attn_qk", hd, tuple(rows(0, "qk") + rows(dim, "qk"))))
            else:
                excluded[qk_name] = "q/k normalisation over the head dimension is not split-invariant"
            if v_ok:
                v = [*rows(2 * dim, "out"), TensorSlice(p + "proj.weight", 1, j.clone(), "in")]
                if gate is not None:
                    v.append(TensorSlice(p + "gate.weight", 0, j.clone(), "out"))
                    if gate.bias is not None:
                        v.append(TensorSlice(p + "gate.bias", 0, j.clone(), "out"))
                groups.append(NeuronGroup(v_name, "attn_v", hd, tuple(v)))
            else:
                excluded[v_name] = "normalisation of the attention output is not split-invariant"
        return groups, excluded
