"""`neurogrow-train`: compose a run with Hydra, fit, test, and write the run directory.

neurogrow-train experiment=smoke
neurogrow-train -m callbacks=surgery callbacks.surgery.ratio=0.05,0.1,0.2
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf

from neurogrow.cli.errors import user_error_message
from neurogrow.cli.run_files import (
    write_class_counts,
    write_json_atomic,
    write_metrics,
    write_resolved_config,
)
from neurogrow.cli.slurm import register_resolvers, resume_checkpoint
from neurogrow.cli.summary import print_summary
from neurogrow.cli.wandb_meta import fill_wandb_meta
from neurogrow.metrics import plot_per_class_accuracy

log = logging.getLogger("neurogrow")

register_resolvers()  # ${slurm_gpus:...}, ${slurm_tasks:...} of hydra/launcher=slurm

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def _instantiate_dict(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a name -> config mapping (callbacks, loggers); null entries are skipped."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node is not None and "_target_" in node]


def _optional(node: DictConfig | None) -> Any:
    return instantiate(node) if node else None


def _finish_wandb(loggers: list[Any]) -> None:
    # Each job of a sweep must be its own wandb run: close this one before the next job starts.
    for lg in loggers:
        if isinstance(lg, WandbLogger) and lg._experiment is not None:
            lg.experiment.finish()


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one experiment; returns the final test metrics (also written to `metrics.json`)."""
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fill_wandb_meta(cfg)  # wandb name and tags (backbone, dataset, IF, method, ratio, seed)
    write_resolved_config(cfg, run_dir)
    L.seed_everything(cfg.seed, workers=True)

    datamodule: L.LightningDataModule = instantiate(cfg.data, sampler=_optional(cfg.get("sampler")))
    datamodule.prepare_data()
    datamodule.setup("fit")
    write_class_counts(run_dir, datamodule.class_counts, datamodule.class_names)
    write_json_atomic(run_dir / "data.json", datamodule.summary())  # which source, profile, seed
    log.info("training images per class: %s", datamodule.class_counts)

    model: L.LightningModule = instantiate(
        cfg.model,
        num_classes=datamodule.num_classes,
        class_counts=list(datamodule.class_counts),
        loss=instantiate(cfg.loss),
        optimizer=instantiate(cfg.optimizer),
        scheduler=_optional(cfg.get("scheduler")),
        _convert_="all",
    )
    if cfg.get("init_from"):
        _load_weights(model, Path(cfg.init_from))

    callbacks = _instantiate_dict(cfg.get("callbacks"))
    loggers = _instantiate_dict(cfg.get("logger"))
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for lg in loggers:
        lg.log_hyperparams(resolved)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    try:
        ckpt_path = resume_checkpoint(run_dir, cfg.get("ckpt_path"), cfg.get("resume", "requeue"))
        # Our own checkpoints hold the optimizer's and scheduler's objects: load them fully (trusted files).
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=False)
        test_ckpt = None if cfg.test_ckpt == "last" or trainer.max_epochs == 0 else cfg.test_ckpt
        trainer.test(model, datamodule=datamodule, ckpt_path=test_ckpt, weights_only=False)
        metrics = dict(model.test_results)
        if trainer.is_global_zero:
            write_metrics(run_dir, metrics)
            plot = plot_per_class_accuracy(
                metrics["test/acc_per_class"],
                datamodule.class_counts,
                run_dir / "per_class_accuracy.png",
                class_names=datamodule.class_names,
            )
            for lg in loggers:
                if hasattr(lg, "log_image"):
                    lg.log_image(key="test/per_class_accuracy", images=[str(plot)])
                if isinstance(lg, WandbLogger):  # the run table's columns: final overall/Many/Medium/Few
                    lg.experiment.summary.update(
                        {k: v for k, v in metrics.items() if not isinstance(v, list)}
                    )
            print_summary(metrics, title=f"{cfg.task_name}: test accuracy (%)")
            log.info("run directory: %s", run_dir)
    finally:
        _finish_wandb(loggers)
    return metrics


def _load_weights(model: torch.nn.Module, path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"init_from: no checkpoint at {path}; point it to a .ckpt of an earlier run")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint.get("state_dict", checkpoint)
    model.load_state_dict(state, strict=True)
    log.info("initialised weights from %s", path)


def _record_failure(err: BaseException) -> None:
    """`error.txt` in the run directory, so that `neurogrow report` lists the run as failed, with why."""
    try:
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text("".join(traceback.format_exception(err)))
    except (OSError, ValueError):
        pass  # recording the failure must never hide the error itself


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except Exception as err:  # turn known user mistakes into one clear line, not a traceback wall
        _record_failure(err)
        message = user_error_message(err)
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        run_dir = HydraConfig.get().runtime.output_dir
        print(
            f"neurogrow-train: error: {message}\n"
            f"(run directory: {run_dir}; set HYDRA_FULL_ERROR=1 for the traceback)",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    return metrics.get("test/acc")


def main() -> None:
    """Console-script entry point (`neurogrow-train`)."""
    _hydra_main()


if __name__ == "__main__":
    main()
