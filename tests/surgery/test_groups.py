"""Neuron groups of real timm models: found, internal only, verified, and splits preserve the output."""

from __future__ import annotations

import copy
import functools

import pytest
import timm
import torch
from timm.models.metaformer import Attention, LayerNorm2dNoBias, LayerNormNoBias, MetaFormer, SepConv
from timm.models.vgg import VGG
from torch.nn import BatchNorm2d

import neurogrow.models  # noqa: F401  (registers the CIFAR ResNets with timm)
from neurogrow.surgery import (
    GroupReport,
    NeuronGroup,
    TensorSlice,
    find_neuron_groups,
    tensor_at,
    verify_groups,
)
from neurogrow.surgery.verify import randomize_degenerate, split_all

# Small members of each family of the paper (and ResNet-32): (name, kwargs, input size).
# Widths/depths are reduced through the constructors' own kwargs to keep the tests fast on 2 cores.
# convformer_s18/caformer_s18 fix dims/depths in their entry points, so their class is built directly.
TINY_METAFORMER = dict(depths=(1, 1, 1, 1), num_classes=10)
FAMILIES = {
    "resnet32_cifar": ("resnet32_cifar", dict(num_classes=10), 16),
    "resnet20_cifar": ("resnet20_cifar", dict(num_classes=10), 8),
    "resnet18": ("resnet18", dict(num_classes=10, layers=(1, 1, 1, 1)), 32),
    "vgg_bn": (
        VGG,
        dict(cfg=[16, "M", 32, "M", 48, 48, "M"], num_classes=10, mlp_ratio=1 / 64, norm_layer=BatchNorm2d),
        32,
    ),
    "convformer": (
        MetaFormer,
        dict(TINY_METAFORMER, dims=(16, 32, 48, 64), token_mixers=SepConv, norm_layers=LayerNorm2dNoBias),
        32,
    ),
    "caformer": (
        MetaFormer,
        dict(
            TINY_METAFORMER,
            dims=(16, 32, 64, 64),
            token_mixers=[SepConv, SepConv, Attention, Attention],
            norm_layers=[LayerNorm2dNoBias] * 2 + [LayerNormNoBias] * 2,
        ),
        32,
    ),
    "vit": ("vit_tiny_patch16_224", dict(num_classes=10, img_size=32, patch_size=8, depth=2), 32),
    "mambaout": ("mambaout_femto", dict(num_classes=10, dims=(16, 32, 48, 64), depths=(1, 1, 1, 1)), 32),
}


def _model(key: str) -> tuple[torch.nn.Module, torch.Tensor]:
    name, kwargs, size = FAMILIES[key]
    torch.manual_seed(0)
    create = name if callable(name) else functools.partial(timm.create_model, name, pretrained=False)
    model = create(**kwargs).eval()
    return model, torch.randn(2, 3, size, size)


@functools.cache
def _found(key: str) -> tuple[torch.nn.Module, torch.Tensor, GroupReport]:
    model, x = _model(key)
    return model, x, find_neuron_groups(model, x)


def _relative_split_diff(model: torch.nn.Module, groups: list[NeuronGroup], x: torch.Tensor) -> float:
    randomize_degenerate(model)
    diff, scale = split_all(model, groups, x)
    return diff / scale


@pytest.mark.parametrize("key", [k for k in FAMILIES if k != "resnet20_cifar"])
def test_groups_are_found_verified_and_splits_preserve_output(key: str) -> None:
    model, x, report = _found(key)
    assert report.groups, f"no neuron groups found for {key}"
    assert report.excluded == {}, report.excluded
    model, _ = _model(key)  # a fresh copy: the split edits it
    assert _relative_split_diff(model, report.groups, x) < 1e-4


def test_resnet_groups_are_block_internal_only() -> None:
    model, _, report = _found("resnet18")
    # One group per BasicBlock (conv1 -> bn1 -> conv2); never the residual stream, stem or classifier.
    assert [g.name for g in report.groups] == [f"layer{i}.0.conv1" for i in range(1, 5)]
    for g in report.groups:
        roles = {(s.path, s.role) for s in g.slices}
        block = g.name.rsplit(".", 1)[0]
        assert (f"{block}.conv1.weight", "out") in roles
        assert (f"{block}.bn1.running_var", "stat") in roles
        assert (f"{block}.conv2.weight", "in") in roles
        assert not any(s.path.startswith(("fc.", "conv1.", "bn1.")) for s in g.slices)
        assert g.size == tensor_at(model, f"{block}.conv1.weight").shape[0]


def test_vgg_includes_the_convmlp_pre_logits() -> None:
    names = [g.name for g in _found("vgg_bn")[2].groups]
    assert names == [
        "features.0",
        "features.4",
        "features.8",
        "features.11",
        "pre_logits.fc1",
        "pre_logits.fc2",
    ]
    assert "pre_logits.fc1" in names and "pre_logits.fc2" in names
    assert not any(n.startswith("head") for n in names)


def test_find_groups_does_not_touch_the_model() -> None:
    model, x = _model("resnet20_cifar")
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []
    handle = model.layer1.register_forward_hook(lambda *_: calls.append(1))  # e.g. a callback's hook
    find_neuron_groups(model, x)
    assert calls == [], "the probes must not run the model's hooks"
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    model(x)
    assert calls == [1], "the hooks are still registered afterwards"
    handle.remove()


def test_verification_excludes_a_wrong_map() -> None:
    """A group that misses a consumer or maps indices wrongly is excluded with a reason."""
    model, x, report = _found("resnet20_cifar")
    good = report.groups[0]
    n = good.size
    missing_consumer = NeuronGroup(
        "missing_consumer",
        good.kind,
        n,
        (
            *(s for s in good.slices if s.role != "in"),
            TensorSlice("layer1.1.conv2.weight", 1, torch.arange(n), "in"),
        ),
    )
    shuffled = NeuronGroup(
        "shuffled",
        good.kind,
        n,
        tuple(
            TensorSlice(s.path, s.dim, s.indices.roll(1) if s.role == "in" else s.indices, s.role)
            for s in good.slices
        ),
    )
    wrong_stat = NeuronGroup(
        "wrong_stat",
        good.kind,
        n,
        tuple(
            TensorSlice(s.path, s.dim, s.indices.flip(0) if s.role == "stat" else s.indices, s.role)
            for s in good.slices
        ),
    )
    ok, failed = verify_groups(copy.deepcopy(model), [good], x)
    assert [g.name for g in ok] == [good.name] and failed == {}
    reasons = {}
    for bad in (missing_consumer, shuffled, wrong_stat):  # one at a time: they overlap the good group
        ok, failed = verify_groups(copy.deepcopy(model), [bad], x)
        assert ok == [] and set(failed) == {bad.name}
        reasons.update(failed)
    assert "coupling probe" in reasons["missing_consumer"]
    assert "coupling probe" in reasons["shuffled"]
    assert "split probe" in reasons["wrong_stat"]


def test_bad_example_input_is_a_clear_error() -> None:
    model, _ = _model("resnet20_cifar")
    with pytest.raises(ValueError, match="batched tensor"):
        find_neuron_groups(model, torch.randn(3))


def test_transformer_groups_per_head_and_mlp() -> None:
    _, _, report = _found("vit")
    names = [g.name for g in report.groups]
    heads = [f"blocks.{b}.attn.{kind}.head{h}" for b in range(2) for kind in ("qk", "v") for h in range(3)]
    assert sorted(names) == sorted([*heads, "blocks.0.mlp.fc1", "blocks.1.mlp.fc1"])
    qk = next(g for g in report.groups if g.name == "blocks.1.attn.qk.head2")
    assert qk.kind == "attn_qk" and qk.size == 64
    q_rows, k_rows = (s.indices for s in qk.slices if s.path.endswith("qkv.weight"))
    assert q_rows.tolist() == list(range(128, 192)) and k_rows.tolist() == list(range(192 + 128, 192 + 192))
    v = next(g for g in report.groups if g.name == "blocks.1.attn.v.head2")
    assert {(s.path, s.role) for s in v.slices} >= {
        ("blocks.1.attn.qkv.weight", "out"),
        ("blocks.1.attn.proj.weight", "in"),
    }


def test_metaformer_and_mambaout_groups() -> None:
    conv_names = [g.name for g in _found("convformer")[2].groups]
    assert conv_names == [
        f"stages.{i}.blocks.0.{n}" for i in range(4) for n in ("token_mixer.dwconv", "mlp.fc1")
    ]
    ca_names = [g.name for g in _found("caformer")[2].groups]
    assert "stages.3.blocks.0.token_mixer.qk.head1" in ca_names and "stages.0.blocks.0.mlp.fc1" in ca_names
    assert not any(n.startswith(("head", "stem")) for n in conv_names + ca_names)
    gated = {g.name: g for g in _found("mambaout")[2].groups}
    assert sorted(gated) == sorted(f"stages.{i}.blocks.0.gated_{k}" for i in range(4) for k in "ic")
    block = gated["stages.0.blocks.0.gated_c"]
    hidden = 42  # int(8/3 * 16): fc1 has 2 * 42 rows, the last 16 units run through the depthwise conv
    g_rows, u_rows = (s.indices for s in block.slices if s.path.endswith("fc1.weight"))
    assert g_rows.tolist() == list(range(26, 42)) and u_rows.tolist() == list(range(26 + hidden, 2 * hidden))


@pytest.mark.parametrize("key", ["vit", "mambaout"])
def test_torch_pruning_alone_maps_qkv_and_gated_blocks_wrongly(key: str) -> None:
    """Without the explicit handlers, Torch-Pruning's groups through the fused qkv / the gated block are
    caught and excluded; no attention or gated-block group reaches the verified list."""
    model, x = _model(key)
    report = find_neuron_groups(model, x, handlers=[])
    assert report.excluded, "the wrong Torch-Pruning maps must be reported"
    assert not any(".attn." in g.name or "gated" in g.name or g.name.endswith(".conv") for g in report.groups)
