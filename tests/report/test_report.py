"""`neurogrow report` on run directories with hand-chosen metrics: exact statistics, grouping, files."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from neurogrow.cli.tool import main as tool_main
from neurogrow.report import collect_runs, make_report
from tests.report.conftest import write_run

SURGERY = {"ratio": 0.1, "schedule": {"start_epoch": 29, "interval": 30}}


def _two_arms(root: Path) -> None:
    """Conventional 70/72/74 % and surgery 73/74/78 % for seeds 0, 1, 2: paired differences 3, 2, 4."""
    for seed, (conv, surg) in enumerate([(0.70, 0.73), (0.72, 0.74), (0.74, 0.78)]):
        write_run(root / "conventional" / str(seed), seed=seed, acc=conv)
        write_run(root / "surgery" / str(seed), seed=seed, acc=surg, surgery=SURGERY, events=2)


def test_paired_difference_has_the_student_t_interval(tmp_path: Path):
    _two_arms(tmp_path / "runs")
    report, written = make_report([tmp_path / "runs"], tmp_path / "out", reference="method=conventional")

    assert report.keys == ["method"]  # data.seed follows seed; checkpoint dirs are per run: not keys
    by_method = {g.key["method"]: g for g in report.groups}
    conv, surg = by_method["conventional"], by_method["surgery"]
    assert conv.stats["overall"].mean == pytest.approx(72.0)
    assert conv.stats["overall"].std == pytest.approx(2.0)
    assert conv.stats["overall"].n == 3
    diff = surg.differences["overall"]
    # differences 3, 2, 4: mean 3, sd 1, t(0.975, df=2) = 4.302653; half width 4.302653 / sqrt(3)
    half = 4.302653 / math.sqrt(3)
    assert diff.n_pairs == 3
    assert diff.mean == pytest.approx(3.0)
    assert diff.low == pytest.approx(3 - half, abs=1e-5)
    assert diff.high == pytest.approx(3 + half, abs=1e-5)
    text = written["text"]
    assert "| conventional | 3 | 72.00 ± 2.00 |" in text
    assert "+3.00 [+0.52, +5.48]" in text
    # the paper's ResNet-18 CIFAR-10-LT IF=100 numbers sit beside ours
    assert "72.2" in text.split("| conventional |")[1].splitlines()[0]
    assert "75.4" in text.split("| surgery |")[1].splitlines()[0]

    rows = list(csv.DictReader((tmp_path / "out" / "groups.csv").open()))
    surg_row = next(r for r in rows if r["method"] == "surgery")
    assert float(surg_row["overall_mean"]) == pytest.approx(75.0)
    assert float(surg_row["paper_overall"]) == pytest.approx(75.4)
    assert float(surg_row["diff_overall_low"]) == pytest.approx(3 - half, abs=1e-4)
    assert surg_row["seeds"] == "0 1 2"
    runs = list(csv.DictReader((tmp_path / "out" / "runs.csv").open()))
    assert len(runs) == 6 and {r["status"] for r in runs} == {"finished"}


def test_unpaired_seeds_give_a_difference_without_an_interval(tmp_path: Path):
    write_run(tmp_path / "a", seed=0, acc=0.5)
    write_run(tmp_path / "b", seed=1, acc=0.6, surgery=SURGERY)
    report, _ = make_report([tmp_path], reference="method=conventional")
    diff = next(g for g in report.groups if g.key["method"] == "surgery").differences["overall"]
    assert diff.mean == pytest.approx(10.0)
    assert diff.low is None and diff.n_pairs == 0


def test_ratio_sweep_groups_by_ratio_and_compares_each_backbone_with_its_own_baseline(tmp_path: Path):
    for backbone, base in (("resnet18", 0.6), ("vgg19_bn", 0.5)):
        for seed in (0, 1):
            write_run(tmp_path / backbone / f"conv{seed}", seed=seed, acc=base, backbone=backbone)
            for ratio in (0.05, 0.2):
                surgery = {**SURGERY, "ratio": ratio}
                acc = base + ratio / 10 + seed / 100
                write_run(
                    tmp_path / backbone / f"r{ratio}-{seed}",
                    seed=seed,
                    acc=acc,
                    surgery=surgery,
                    backbone=backbone,
                )
    report, written = make_report([tmp_path], tmp_path / "out", reference="method=conventional")
    assert report.keys == ["method", "callbacks.surgery.ratio", "model.backbone"]
    assert report.labels["callbacks.surgery.ratio"] == "ratio"
    assert len(report.groups) == 6
    g = next(
        g
        for g in report.groups
        if g.key["model.backbone"] == "vgg19_bn" and g.key["callbacks.surgery.ratio"] == 0.2
    )
    assert g.reference.key == {
        "method": "conventional",
        "model.backbone": "vgg19_bn",
        "callbacks.surgery.ratio": "-",
    }
    assert g.differences["overall"].mean == pytest.approx(2.5)  # 0.02 + seeds 0 and 0.01
    assert g.differences["overall"].n_pairs == 2
    names = {p.name for p in written["figures"]}
    assert names == {"accuracy_vs_ratio.png", "per_class_accuracy.png"}
    assert all(p.stat().st_size > 5000 for p in written["figures"])


def test_by_overrides_the_grouping_and_unknown_keys_are_one_line(tmp_path: Path, capsys):
    _two_arms(tmp_path / "runs")
    report, _ = make_report([tmp_path / "runs"], by=["model.backbone"])
    assert report.keys == ["model.backbone"] and len(report.groups) == 1
    assert report.groups[0].stats["overall"].n == 6

    with pytest.raises(SystemExit) as exit_info:
        tool_main(["report", str(tmp_path / "runs"), "--by", "model.arch", "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.arch" in err[0] and "--by" in err[0]

    with pytest.raises(SystemExit):
        tool_main(
            ["report", str(tmp_path / "runs"), "--reference", "method=nam", "--out", str(tmp_path / "o")]
        )
    assert "no group has" in capsys.readouterr().err


def test_failed_and_unfinished_runs_are_listed_not_dropped(tmp_path: Path):
    _two_arms(tmp_path)
    write_run(tmp_path / "surgery" / "3", seed=3, acc=None, surgery=SURGERY)
    failed = write_run(tmp_path / "surgery" / "4", seed=4, acc=None, surgery=SURGERY)
    (failed / "error.txt").write_text("Traceback ...\nRuntimeError: CUDA out of memory\n")
    runs = collect_runs([tmp_path])
    assert len(runs) == 8  # the .hydra/config.yaml inside each run is not a run
    report, written = make_report([tmp_path], tmp_path / "out", reference="method=conventional")
    assert sorted(r.status for r in report.incomplete) == ["failed", "unfinished"]
    assert "## Failed or unfinished runs" in written["text"]
    assert "surgery/4 | failed | RuntimeError: CUDA out of memory" in written["text"]
    assert "surgery/3 | unfinished | no metrics.json yet" in written["text"]
    assert next(g for g in report.groups if g.key["method"] == "surgery").stats["overall"].n == 3


def test_surgery_event_log_gives_the_neuron_count_figure(tmp_path: Path, capsys):
    _two_arms(tmp_path / "runs")
    assert tool_main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr()
    assert "| method |" in out.out and "neuron_counts.png" in out.err
    assert (tmp_path / "out" / "neuron_counts.png").stat().st_size > 5000
    assert (tmp_path / "out" / "report.md").read_text() == out.out.rstrip("\n") + "\n"


def test_missing_directory_is_one_line(tmp_path: Path, capsys):
    with pytest.raises(SystemExit):
        tool_main(["report", str(tmp_path / "nope")])
    assert "is not a directory" in capsys.readouterr().err
