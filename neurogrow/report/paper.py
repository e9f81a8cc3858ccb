"""The paper's numbers, looked up for a group of runs by dataset, imbalance factor, backbone and method."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["PAPER_RESULTS", "dataset_id", "paper_value"]

PAPER_RESULTS = Path(__file__).with_name("paper_results.yaml")
_DATASETS = {
    "CIFAR10LTDataModule": "cifar10_lt",
    "CIFAR100LTDataModule": "cifar100_lt",
    "ImageNetLTDataModule": "imagenet_lt",
    "INaturalist2018DataModule": "inaturalist2018",
}


@cache
def _table(path: Path = PAPER_RESULTS) -> list[dict[str, Any]]:
    return list((yaml.safe_load(path.read_text()) or {}).get("results", []))


def dataset_id(config: Mapping[str, Any]) -> str | None:
    """The dataset a run trained on (`cifar10_lt`, ...) from its data module's class."""
    target = str(config.get("data._target_", ""))
    return _DATASETS.get(target.rsplit(".", 1)[-1])


def paper_value(config: Mapping[str, Any], metric: str) -> float | None:
    """The paper's `metric` (overall / many / medium / few, %) for a run's setting, or None if unknown.

    Only runs with the paper's defaults match: a surgery run with a non-default ratio or criterion
    is not the paper's surgery row.
    """
    method = config.get("method")
    if method == "surgery" and (
        config.get("callbacks.surgery.ratio", 0.1) != 0.1
        or config.get("callbacks.surgery.scoring.criterion", config.get("callbacks.surgery.criterion"))
        not in (None, "accum_grad")
    ):
        return None
    key = {
        "dataset": dataset_id(config),
        "imbalance_factor": config.get("data.imbalance_factor"),
        "backbone": config.get("model.backbone"),
        "method": method,
    }
    for row in _table():
        if all(row.get(k) == v for k, v in key.items()) and metric in row:
            return float(row[metric])
    return None
