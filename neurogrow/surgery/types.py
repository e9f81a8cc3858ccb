"""Surgery's shared types: a neuron group and the tensor slices it consists of (a leaf module)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

__all__ = ["GroupReport", "NeuronGroup", "Role", "TensorSlice"]

Role = Literal["out", "in", "channel", "stat", "qk"]


@dataclass(frozen=True)
class TensorSlice:
    """The positions of a group's N neurons along one dimension of one parameter or buffer."""

    path: str  # dotted name of a parameter or buffer in the model, e.g. "layer1.0.conv1.weight"
    dim: int  # the dimension along which this group's neurons lie in that tensor
    indices: torch.Tensor  # LongTensor (N,): position of neuron j along `dim`
    role: Role
    # out     : producer rows/bias. Split: copy source -> target.
    # in      : consumer columns. Split: target := source * (1 - a), source := source * a (a = 1/2).
    # channel : per-neuron elementwise params between producer and consumer (norm gamma/beta,
    #           depthwise-conv filters, layer scale). Split: copy.
    # stat    : BatchNorm running_mean/running_var (buffers). Split: copy, or reset (mean 0, var 1).
    # qk      : rows of q and of k for one head dimension. Split: copy, then both rows times sqrt(1/2).

    def __repr__(self) -> str:
        return f"TensorSlice({self.path!r}, dim={self.dim}, role={self.role!r}, n={len(self.indices)})"


@dataclass(frozen=True)
class NeuronGroup:
    """N interchangeable neurons of one layer and every tensor slice that belongs to each of them."""

    name: str  # stable, human-readable, e.g. "layer1.0.conv1", "blocks.3.attn.v.head2", "blocks.3.mlp.fc1"
    kind: str  # "conv", "linear_hidden", "attn_qk", "attn_v", "gated_hidden", ...
    size: int  # N neurons
    slices: tuple[TensorSlice, ...]

    def paths(self) -> set[str]:
        return {s.path for s in self.slices}


@dataclass
class GroupReport:
    groups: list[NeuronGroup]  # verified, safe to edit
    excluded: dict[str, str] = field(default_factory=dict)  # group name -> reason it was excluded
