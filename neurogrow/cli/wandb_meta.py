"""What a wandb run is called and tagged with, derived from the composed config.

`logger.wandb.name: null` gets `<task>/<backbone>-<method>[-r<ratio>]-s<seed>[-j<job>]`; the tags get
backbone, dataset, imbalance factor, ratio, method and seed, so a dashboard can filter and group by them.
A resumed run continues the wandb run its first attempt started (same id), rather than starting another.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from neurogrow.report.collect import flatten, method_of
from neurogrow.report.paper import dataset_id

__all__ = ["continue_wandb_run", "fill_wandb_meta", "run_name", "run_tags"]


def _facts(cfg: DictConfig) -> dict[str, Any]:
    flat = flatten(OmegaConf.to_container(cfg.get("model", {}), resolve=True), "model")
    flat.update(flatten(OmegaConf.to_container(cfg.get("data", {}), resolve=True), "data"))
    callbacks = OmegaConf.to_container(cfg.get("callbacks") or {}, resolve=True)
    flat.update(flatten(callbacks, "callbacks"))
    return {
        "backbone": flat.get("model.backbone"),
        "dataset": dataset_id(flat) or str(flat.get("data._target_", "data")).rsplit(".", 1)[-1],
        "if": flat.get("data.imbalance_factor"),
        "method": method_of(flat),
        "ratio": flat.get("callbacks.surgery.ratio"),
        "seed": cfg.get("seed"),
    }


def _job_num() -> int | None:
    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    return hc.job.get("num") if str(hc.mode) == "RunMode.MULTIRUN" else None


def run_tags(cfg: DictConfig) -> list[str]:
    """`backbone:resnet18`, `dataset:cifar10_lt`, `if:100`, `method:surgery`, `ratio:0.1`, `seed:0`."""
    tags = [f"{k}:{v}" for k, v in _facts(cfg).items() if v is not None]
    return tags


def run_name(cfg: DictConfig) -> str:
    f = _facts(cfg)
    name = f"{cfg.get('task_name', 'run')}/{f['backbone']}-{f['method']}"
    if f["ratio"] is not None:
        name += f"-r{f['ratio']}"
    name += f"-s{f['seed']}"
    job = _job_num()
    return f"{name}-j{job}" if job is not None else name


def _wandb_entries(cfg: DictConfig) -> Iterator[tuple[str, Any]]:
    loggers: Mapping[str, Any] = cfg.get("logger") or {}
    for key, node in loggers.items():
        if node is not None and str(node.get("_target_", "")).endswith("WandbLogger"):
            yield key, node


def fill_wandb_meta(cfg: DictConfig) -> None:
    """Fill `name` (when null) and extend `tags` of every WandbLogger entry of `cfg.logger`, in place."""
    for key, node in _wandb_entries(cfg):
        with open_dict(cfg):
            if node.get("name") is None:
                cfg.logger[key].name = run_name(cfg)
            own = list(node.get("tags") or [])
            cfg.logger[key].tags = own + [t for t in run_tags(cfg) if t not in own]


def continue_wandb_run(cfg: DictConfig) -> None:
    """For a resumed run: give every WandbLogger without an `id` the id of the newest wandb run in its
    `save_dir` (`wandb/[offline-]run-<time>-<id>`) and `resume="allow"`, so the attempts are one wandb run
    (offline, each attempt writes its own folder; `wandb sync` merges them into that run)."""
    for key, node in _wandb_entries(cfg):
        if node.get("id") is not None or not node.get("save_dir"):
            continue
        folders = sorted(
            (p for p in (Path(node.save_dir) / "wandb").glob("*run-*-*") if p.is_dir()),
            key=lambda p: p.name.rsplit("-", 2)[-2],  # the start time
        )
        if folders:
            with open_dict(cfg):
                cfg.logger[key].id = folders[-1].name.rsplit("-", 1)[-1]
                cfg.logger[key].resume = "allow"
