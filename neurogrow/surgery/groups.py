"""Neuron groups: the tensor slices that must change together when one neuron is added or removed.

A neuron of an internal width (a ResNet block's inner channel, a VGG channel, an MLP hidden unit, one
dimension of an attention head) lives in several tensors at once: the producing layer's output rows and
bias, the per-channel parameters and running statistics between producer and consumer, and every
consuming layer's input columns. Torch-Pruning's ``DependencyGraph`` finds these couplings through
reshapes, splits and concatenations; we only read its index maps (its pruning functions change shapes,
which would break the optimizer, DDP and ``torch.compile``) and translate them into :class:`TensorSlice`.
Where its map is known to be wrong (fused qkv attention, MambaOut's gated block), explicit handlers in
:mod:`neurogrow.surgery.handlers` build the groups instead. Every group is then verified with probes
(:mod:`neurogrow.surgery.verify`); groups that fail are excluded and reported, never edited.
"""

from __future__ import annotations

import copy
import re

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning.dependency import DependencyGraph, Group, Node

from neurogrow.surgery.handlers import find_handler_groups
from neurogrow.surgery.types import GroupReport, NeuronGroup, Role, TensorSlice
from neurogrow.surgery.verify import verify_groups

__all__ = ["find_neuron_groups"]

_OPT = tp.ops.OPTYPE
# Graph nodes that only route indices (Torch-Pruning maps indices through them); they own no tensors.
_ADD = re.compile(r"^(Add|Sub)Backward\d*$")  # not AddmmBackward (a matmul with bias)
_ROUTING = {_OPT.CONCAT, _OPT.SPLIT, _OPT.RESHAPE, _OPT.UNBIND, _OPT.EXPAND, _OPT.SLICE, _OPT.ELEMENTWISE}


def find_neuron_groups(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    verify: bool = True,
    handlers: list | None = None,
    ratio: float = 0.1,
) -> GroupReport:
    """Find (and by default verify) every internal neuron group of ``model``.

    ``example_input`` is a small batch in the model's input format (e.g. ``(2, 3, 32, 32)``) on the model's
    device. ``handlers`` overrides :data:`neurogrow.surgery.handlers.HANDLERS` (``[]``: Torch-Pruning
    only); ``ratio`` sizes the split probe like the events that will follow. The model itself is never
    modified: tracing and probes run on a deep copy (tracing switches to eval mode and the probes edit
    weights), and groups refer to tensors only by their dotted path.
    """
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 2:
        raise ValueError("example_input must be a batched tensor such as torch.randn(2, 3, 32, 32)")
    work = _hookless_copy(model).eval()
    with torch.enable_grad():  # tracing and the coupling probe need autograd, even if the caller disabled it
        handled = find_handler_groups(work, handlers)
        tp_groups, tp_excluded = _torch_pruning_groups(work, example_input, handled.owned)
        outside = _out_of_scope_prefixes(work)
        candidates = [g for g in _order(work, handled.groups + tp_groups) if not _inside(g, outside)]
        excluded = {k: v for k, v in {**handled.excluded, **tp_excluded}.items() if not k.startswith(outside)}
        if verify:
            candidates, failed = verify_groups(work, candidates, example_input, ratio=ratio)
            excluded.update(failed)
    return GroupReport(groups=candidates, excluded=excluded)


_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def _hookless_copy(model: nn.Module) -> nn.Module:
    """Deep copy without the module hooks that callbacks registered: the probes' forward passes must not
    reach them, and deep-copying a hook would deep-copy the callback (and the Trainer) it is bound to.
    Hooks that are part of the computation (``torch.nn.utils`` weight/spectral norm) are kept."""
    saved = []
    for module in model.modules():
        for attr in _HOOK_DICTS:
            hooks = getattr(module, attr, None)
            if not hooks:
                continue
            saved.append((module, attr, hooks))
            kept = type(hooks)()
            if attr == "_forward_pre_hooks":
                for key, hook in hooks.items():
                    if type(hook).__module__.startswith("torch.nn.utils"):
                        kept[key] = hook
            setattr(module, attr, kept)
    try:
        return copy.deepcopy(model)
    finally:
        for module, attr, hooks in saved:
            setattr(module, attr, hooks)


def _out_of_scope_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Module prefixes whose widths the surgery leaves alone: the stem (timm names it ``stem``; it is the
    input side, and often normalises across channels) and the classification head around the classifier
    (e.g. MetaFormer's and MambaOut's MlpHead, whose hidden units pass through a LayerNorm)."""
    prefixes = ["stem."]
    classifier = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or ""
    if isinstance(classifier, (list, tuple)):
        classifier = classifier[0] if classifier else ""
    get = getattr(model, "get_classifier", None)
    if not classifier and callable(get):  # models built without timm.create_model have no pretrained_cfg
        module = get()
        classifier = next((n for n, m in model.named_modules() if m is module and n), "")
    parent = classifier.rpartition(".")[0]
    if parent:
        prefixes.append(parent + ".")
    return tuple(prefixes)


def _inside(group: NeuronGroup, prefixes: tuple[str, ...]) -> bool:
    producers = [s.path for s in group.slices if s.role in ("out", "qk")]
    return all(p.startswith(prefixes) for p in producers)


def _order(model: nn.Module, groups: list[NeuronGroup]) -> list[NeuronGroup]:
    """Sort groups by the position of their first tensor in the model, so the order is stable."""
    position = {name: i for i, (name, _) in enumerate(model.named_parameters())}
    return sorted(groups, key=lambda g: (min(position.get(s.path, 1 << 30) for s in g.slices), g.name))


def _torch_pruning_groups(
    model: nn.Module, example_input: torch.Tensor, owned: set[nn.Module]
) -> tuple[list[NeuronGroup], dict[str, str]]:
    """Translate Torch-Pruning's coupled groups into internal :class:`NeuronGroup` s."""
    graph = DependencyGraph().build_dependency(model, example_inputs=example_input, verbose=False)
    groups: list[NeuronGroup] = []
    excluded: dict[str, str] = {}
    # ignored_layers: a group whose output side touches a handler-owned module is built by the handler.
    for tp_group in graph.get_all_groups(ignored_layers=list(owned)):
        root = tp_group[0].dep.target.module
        name = graph._module2name.get(root, str(root))
        result = _translate(graph, tp_group, name)
        if isinstance(result, NeuronGroup):
            groups.append(result)
        elif result is not None:
            excluded[name] = result
    return groups, excluded


def _is_residual(node: Node) -> bool:
    """An add/sub of two feature maps couples the group to a residual stream (not an internal width)."""
    if not _ADD.match(str(getattr(node.module, "_grad_fn", ""))):
        return False
    return sum(1 for n in node.inputs if n.type != _OPT.PARAMETER) >= 2


def _per_neuron(idxs: list[int], root_idxs: list[int], n: int) -> torch.Tensor | None:
    """(N, m) positions: the m indices that neuron j occupies in one tensor (m > 1 after a flatten)."""
    buckets: list[list[int]] = [[] for _ in range(n)]
    for i, r in zip(idxs, root_idxs):
        if not 0 <= r < n:
            return None
        buckets[r].append(int(i))
    m = len(buckets[0])
    if m == 0 or any(len(b) != m for b in buckets):
        return None
    return torch.tensor([sorted(b) for b in buckets], dtype=torch.long)


def _translate(graph: DependencyGraph, tp_group: Group, name: str) -> NeuronGroup | str | None:
    """One Torch-Pruning group -> a NeuronGroup, a reason to exclude it, or None if it is not internal."""
    root_item = tp_group[0]
    n = len(root_item.idxs)
    slices: list[TensorSlice] = []
    for item in tp_group:
        node = item.dep.target
        if node.type == _OPT.OUTPUT or (node.type == _OPT.ELEMENTWISE and _is_residual(node)):
            return None  # classifier output or residual stream: not an internal width
        if node.type in _ROUTING:
            continue
        positions = _per_neuron(list(item.idxs), list(item.root_idxs), n)
        if positions is None:
            return f"Torch-Pruning maps neurons of {node.name} irregularly"
        is_out = graph.is_out_channel_pruning_fn(item.dep.handler)
        found = _slices_of(graph, node, is_out)
        if isinstance(found, str):
            return found
        for path, dim, role in found:
            slices.extend(
                TensorSlice(path, dim, positions[:, k].clone(), role) for k in range(positions.shape[1])
            )
    if n < 2:
        return None
    roles = {s.role for s in slices}
    if "in" not in roles:
        return None  # nothing reads these neurons inside the model: they are outputs (e.g. the classifier)
    if "out" not in roles:
        return "group has no producer tensor"
    kind = "conv" if isinstance(root_item.dep.target.module, nn.modules.conv._ConvNd) else "linear_hidden"
    return NeuronGroup(name=name, kind=kind, size=n, slices=tuple(slices))


def _slices_of(graph: DependencyGraph, node: Node, is_out: bool) -> list[tuple[str, int, Role]] | str:
    """(path, dim, role) of the tensors a graph node owns for this group, or a reason it is unsupported."""
    module = node.module
    prefix = graph._module2name.get(module, "")
    p = (prefix + ".") if prefix else ""
    t = node.type
    if t == _OPT.CONV:
        if module.transposed:
            return f"transposed convolution {prefix} is not supported"
        if module.groups > 1:
            return f"grouped convolution {prefix} (groups={module.groups}) couples channels across groups"
        if is_out:
            return [(p + "weight", 0, "out")] + ([(p + "bias", 0, "out")] if module.bias is not None else [])
        return [(p + "weight", 1, "in")]
    if t == _OPT.DEPTHWISE_CONV:
        if module.in_channels != module.out_channels:
            return f"depthwise convolution {prefix} with a channel multiplier is not supported"
        return [(p + "weight", 0, "channel")] + (
            [(p + "bias", 0, "channel")] if module.bias is not None else []
        )
    if t == _OPT.LINEAR:
        if is_out:
            return [(p + "weight", 0, "out")] + ([(p + "bias", 0, "out")] if module.bias is not None else [])
        return [(p + "weight", 1, "in")]
    if t in (_OPT.BN, _OPT.IN):
        found: list[tuple[str, int, Role]] = []
        if module.affine:
            found += [(p + "weight", 0, "channel"), (p + "bias", 0, "channel")]
        if module.track_running_stats and module.running_mean is not None:
            found += [(p + "running_mean", 0, "stat"), (p + "running_var", 0, "stat")]
        return found
    if t == _OPT.PRELU:
        return [(p + "weight", 0, "channel")] if module.num_parameters > 1 else []
    if t == _OPT.PARAMETER:
        return [(graph._param_to_name[module], node.pruning_dim, "channel")]
    if t in (_OPT.LN, _OPT.GN):
        return f"{type(module).__name__} {prefix} normalises across the group's neurons (a split changes it)"
    return f"unsupported layer {type(module).__name__} {prefix}"
