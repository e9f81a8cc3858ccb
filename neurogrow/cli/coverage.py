"""Which timm models the surgery supports: groups found, verified and excluded, and whether a split keeps
the output. Backs ``neurogrow coverage`` and ``benchmarks/coverage_table.py`` (the table in docs/coverage.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import timm
import torch

import neurogrow.models  # noqa: F401  (the models package registers the CIFAR ResNets with timm)
from neurogrow.errors import UserError
from neurogrow.surgery.groups import find_neuron_groups
from neurogrow.surgery.verify import randomize_degenerate, split_all

__all__ = [
    "DEFAULT_MODELS",
    "EXTRA_MODELS",
    "CoverageRow",
    "format_table",
    "model_coverage",
    "resolve_models",
]

# The paper's architectures and the CIFAR backbone: every group must verify and splits keep the output.
DEFAULT_MODELS = (
    "vgg19_bn",
    "resnet18",
    "resnet50",
    "convformer_s18",
    "caformer_s18",
    "vit_base_patch16_224",
    "mambaout_femto",
    "resnet32_cifar",
)
# Further families, reported as they are.
EXTRA_MODELS = (
    "convnext_atto",
    "efficientnet_b0",
    "mobilenetv3_small_100",
    "regnetx_002",
    "deit_tiny_patch16_224",
    "swin_tiny_patch4_window7_224",
)
RTOL = 1e-4


@dataclass
class CoverageRow:
    model: str
    groups: int  # candidate internal groups (verified + excluded)
    verified: int
    excluded: int
    max_abs_diff: (
        float  # max |output change| of one paired event (remove k + split k) in every verified group
    )
    rel_diff: float  # max_abs_diff / max |output|
    preserved: bool | None  # rel_diff <= 1e-4; None when no group was verified (nothing to split)
    input_size: tuple[int, ...]
    seconds: float
    excluded_reasons: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def resolve_models(spec: str) -> list[str]:
    """``a,b,c`` with the shorthands ``default``, ``extra`` and ``all``; unknown names are a clear error."""
    names: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        expanded = {"default": DEFAULT_MODELS, "extra": EXTRA_MODELS, "all": DEFAULT_MODELS + EXTRA_MODELS}
        names.extend(expanded.get(item, (item,)))
    unknown = [n for n in names if not timm.is_model(n)]
    if unknown:
        raise UserError(
            f"unknown timm model(s): {', '.join(unknown)}; use names from timm.list_models() "
            "or the shorthands default, extra, all"
        )
    if not names:
        raise UserError("no models given: pass --models a,b,... (or default, extra, all)")
    return names


def model_coverage(name: str, *, noise: float = 0.0, seed: int = 0, batch: int = 2) -> CoverageRow:
    """Find and verify the groups of a freshly created ``name`` and split all of them at once.

    The model is created with ``pretrained=False`` at its ``pretrained_cfg`` input size. Constant
    initial values (zero-initialised last-BN gammas, tiny layer scales, zero heads) are replaced by random
    ones first, as in the verification, so that a wrong map cannot hide behind a dead branch.
    """
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False).eval()
    size = tuple(model.pretrained_cfg.get("input_size", (3, 224, 224)))
    x = torch.randn(batch, *size, generator=torch.Generator().manual_seed(seed))
    report = find_neuron_groups(model, x)
    randomize_degenerate(model, torch.Generator().manual_seed(seed))
    diff, scale = split_all(model, report.groups, x, seed=seed, noise=noise) if report.groups else (0.0, 1.0)
    rel = diff / max(scale, 1e-12)
    return CoverageRow(
        model=name,
        groups=len(report.groups) + len(report.excluded),
        verified=len(report.groups),
        excluded=len(report.excluded),
        max_abs_diff=diff,
        rel_diff=rel,
        preserved=(rel <= RTOL) if report.groups else None,
        input_size=size,
        seconds=round(time.perf_counter() - start, 2),
        excluded_reasons=dict(report.excluded),
    )


def coverage(
    names: Iterable[str], *, noise: float = 0.0, progress: Callable[[CoverageRow], None] | None = None
) -> list[CoverageRow]:
    rows = []
    for name in names:
        row = model_coverage(name, noise=noise)
        if progress is not None:
            progress(row)
        rows.append(row)
    return rows


def _yes_no(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "NO")


def format_table(rows: list[CoverageRow]) -> str:
    """A Markdown table, plus one line per excluded group with its reason."""
    header = "| model | input | groups | verified | excluded | max abs diff | relative | preserved | s |"
    lines = [header, "|---|---|---:|---:|---:|---:|---:|:---:|---:|"]
    for r in rows:
        size = "x".join(map(str, r.input_size[1:]))
        lines.append(
            f"| {r.model} | {size} | {r.groups} | {r.verified} | {r.excluded} | {r.max_abs_diff:.2e} "
            f"| {r.rel_diff:.2e} | {_yes_no(r.preserved)} | {r.seconds:.1f} |"
        )
    reasons = [(r.model, g, why) for r in rows for g, why in r.excluded_reasons.items()]
    if reasons:
        lines += ["", "Excluded groups:", ""]
        lines += [f"- `{model}` `{group}`: {why}" for model, group, why in reasons]
    return "\n".join(lines)
