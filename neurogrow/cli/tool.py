"""The ``neurogrow`` command: ``neurogrow coverage``, ``neurogrow export`` and ``neurogrow report``.

Heavy imports (timm, torch-pruning) happen inside the subcommands so that ``neurogrow --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from neurogrow.errors import UserError, UserFileNotFoundError

__all__ = ["main"]


def _coverage(args: argparse.Namespace) -> int:
    from neurogrow.cli.coverage import coverage, format_table, resolve_models

    names = resolve_models(args.models)
    if args.noise < 0:
        raise UserError(f"--noise must be >= 0, got {args.noise}")

    def progress(row) -> None:
        print(
            f"[coverage] {row.model}: {row.verified}/{row.groups} verified, "
            f"max abs diff {row.max_abs_diff:.2e} ({row.seconds:.1f} s)",
            file=sys.stderr,
        )

    rows = coverage(names, noise=args.noise, progress=progress)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        print(format_table(rows))
    return 0


def _export(args: argparse.Namespace) -> int:
    if not args.checkpoint.is_file():
        raise UserFileNotFoundError(
            f"checkpoint {args.checkpoint} does not exist; pass a Lightning .ckpt file"
        )
    from neurogrow.models.export import export_checkpoint

    export = export_checkpoint(args.checkpoint, args.out, trust=args.trust)
    print(f"wrote {export.path}")
    print(f"timm.create_model keyword arguments: {json.dumps(export.timm_kwargs)}")
    print(export.instructions())
    return 0


def _report(args: argparse.Namespace) -> int:
    from neurogrow.report import make_report

    by = [k.strip() for k in args.by.split(",") if k.strip()] if args.by else None
    out = args.out if args.out is not None else Path.cwd() / "report"
    _, written = make_report(args.paths, out, by=by, reference=args.reference, title=args.title)
    print(written["text"])
    figures = ", ".join(p.name for p in written["figures"]) or "none"
    print(f"wrote {written['markdown']}, groups.csv, runs.csv; figures: {figures}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurogrow", description="neurogrow tools (training: neurogrow-train)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    cov = sub.add_parser(
        "coverage",
        help="neuron groups found/verified/excluded per timm model, and whether a split keeps the output",
    )
    cov.add_argument(
        "--models",
        default="default",
        help="comma-separated timm model names, or the shorthands default (the paper's models), extra, all",
    )
    cov.add_argument("--json", action="store_true", help="print a JSON list instead of a Markdown table")
    cov.add_argument(
        "--noise", type=float, default=0.0, help="GDA noise of the splits (0: function-preserving)"
    )
    cov.set_defaults(func=_coverage)

    exp = sub.add_parser(
        "export", help="write the trained network as safetensors and print how to rebuild it (timm kwargs)"
    )
    exp.add_argument("checkpoint", type=Path, help="Lightning checkpoint (.ckpt) of a neurogrow run")
    exp.add_argument("out", type=Path, help="output .safetensors file")
    exp.add_argument(
        "--trust",
        action="store_true",
        help="allow full unpickling (checkpoints of older neurogrow versions hold pickled classes); "
        "this runs code from the file: only for files you trust",
    )
    exp.set_defaults(func=_export)

    rep = sub.add_parser(
        "report",
        help="tables (Markdown, CSV) and figures from run or multirun directories",
        description="Collect run directories (folders with config.yaml; finished ones have metrics.json) "
        "below the given paths, group them by the config keys that differ (or --by), and report mean ± std "
        "over seeds of overall/Many/Medium/Few/balanced accuracy, the paired difference to --reference "
        "with a 95 % Student-t interval, and the paper's numbers where known.",
    )
    rep.add_argument("paths", nargs="+", type=Path, help="run directories or multirun (sweep) directories")
    rep.add_argument("--out", type=Path, default=None, help="output directory (default: ./report)")
    rep.add_argument(
        "--by", default=None, help="comma-separated config keys to group by, e.g. model.backbone,method"
    )
    rep.add_argument(
        "--reference",
        default=None,
        help="the group to compare with, as key=value[,key=value], e.g. method=conventional",
    )
    rep.add_argument("--title", default="neurogrow report", help="heading of report.md")
    rep.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from neurogrow.cli.errors import user_error_message

    try:
        return args.func(args)
    except Exception as err:  # the project's user errors in one line; anything else is a bug: traceback
        message = user_error_message(err)
        if message is None:
            raise
        parser.exit(2, f"neurogrow {args.command}: error: {message}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
