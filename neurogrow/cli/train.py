"""`neurogrow-train`: compose a run with Hydra, fit, test, and write the run directory.

neurogrow-train experiment=smoke
neurogrow-train -m surgery=default callbacks.surgery.ratio=0.05,0.1,0.2
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from neurogrow.cli.checks import check_config
from neurogrow.cli.errors import user_error_message
from neurogrow.cli.run_files import (
    write_class_counts,
    write_json_atomic,
    write_metrics,
    write_resolved_config,
)
from neurogrow.cli.slurm import register_resolvers as register_slurm_resolvers
from neurogrow.cli.slurm import resume_checkpoint
from neurogrow.errors import UserFileNotFoundError
from neurogrow.precision import register_resolvers

if TYPE_CHECKING:  # torch, Lightning and timm load inside `train`, so `--help` answers at once
    import lightning as L
    import torch

log = logging.getLogger("neurogrow")
register_resolvers()  # ${neurogrow.cpu_precision:} (conf/trainer/cpu_fast.yaml), before Hydra composes

register_slurm_resolvers()  # ${slurm_gpus:...}, ${slurm_tasks:...} of hydra/launcher=slurm

# The configs ship inside the package (conf/ is installed as `neurogrow.conf`, see setup.py), so an
# installed `neurogrow-train` finds them wherever it is started; in a checkout they are conf/ itself.
CONFIG_PACKAGE = "neurogrow.conf"


def _instantiate_dict(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a name -> config mapping (callbacks, loggers); null entries are skipped."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node is not None and "_target_" in node]


def _optional(node: DictConfig | None) -> Any:
    return instantiate(node) if node else None


def _finish_wandb(loggers: list[Any]) -> None:
    # Each job of a sweep must be its own wandb run: close this one before the next job starts.
    from lightning.pytorch.loggers import WandbLogger

    for lg in loggers:
        if isinstance(lg, WandbLogger) and lg._experiment is not None:
            lg.experiment.finish()


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one experiment; returns the final test metrics (also written to `metrics.json`)."""
    import lightning as L
    from lightning.pytorch.loggers import WandbLogger

    from neurogrow.cli.summary import print_summary
    from neurogrow.cli.wandb_meta import continue_wandb_run, fill_wandb_meta
    from neurogrow.metrics import plot_per_class_accuracy

    check_config(cfg)
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fill_wandb_meta(cfg)  # wandb name and tags (backbone, dataset, IF, method, ratio, seed)
    ckpt_path = resume_checkpoint(run_dir, cfg.get("ckpt_path"), cfg.get("resume", "requeue"))
    if ckpt_path is not None:
        continue_wandb_run(cfg)
    write_resolved_config(cfg, run_dir)
    L.seed_everything(cfg.seed, workers=True)

    datamodule: L.LightningDataModule = instantiate(cfg.data, sampler=_optional(cfg.get("sampler")))
    datamodule.prepare_data()
    datamodule.setup("fit")
    log.info("training images per class: %s", datamodule.class_counts)

    model: L.LightningModule = instantiate(
        cfg.model,
        num_classes=datamodule.num_classes,
        class_counts=list(datamodule.class_counts),
        loss=instantiate(cfg.loss),
        optimizer=instantiate(cfg.optimizer),
        scheduler=_optional(cfg.get("scheduler")),
        shot_groups=cfg.get("metrics"),
        _convert_="all",
    )
    trust = bool(cfg.get("trust_checkpoint", False))
    if cfg.get("init_from"):
        _load_weights(model, Path(cfg.init_from), trust=trust)
    # the profile is known to work now (data and model built): record it
    write_class_counts(run_dir, datamodule.class_counts, datamodule.class_names)
    write_json_atomic(run_dir / "data.json", datamodule.summary())  # which source, profile, seed

    callbacks = _instantiate_dict(cfg.get("callbacks"))
    loggers = _instantiate_dict(cfg.get("logger"))
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for lg in loggers:
        lg.log_hyperparams(resolved)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    try:
        # weights_only unless trusted, the run's own last.ckpt too: a checkpoint never runs code
        # (AtomicCheckpointIO explains failures)
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=not trust)
        test_ckpt = None if cfg.test_ckpt == "last" or trainer.max_epochs == 0 else cfg.test_ckpt
        trainer.test(model, datamodule=datamodule, ckpt_path=test_ckpt, weights_only=not trust)
        metrics = dict(model.test_results)
        if trainer.is_global_zero:
            write_metrics(run_dir, metrics)
            plot = plot_per_class_accuracy(
                metrics["test/acc_per_class"],
                datamodule.class_counts,
                run_dir / "per_class_accuracy.png",
                class_names=datamodule.class_names,
                shot_thresholds=OmegaConf.to_container(cfg.metrics) if cfg.get("metrics") else None,
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


def _load_weights(model: torch.nn.Module, path: Path, trust: bool) -> None:
    from neurogrow.models.checkpoints import CheckpointError, load_checkpoint

    if not path.is_file():
        raise UserFileNotFoundError(
            f"init_from: no checkpoint at {path}; point it to a .ckpt of an earlier run"
        )
    checkpoint = load_checkpoint(path, trust=trust, trust_hint="set trust_checkpoint=true")
    state = checkpoint.get("state_dict", checkpoint)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # another architecture or number of classes
        first = str(err).strip().splitlines()[-1].strip()[:160]
        raise CheckpointError(
            f"init_from: {path} does not fit this model ({first}); use a checkpoint of the same "
            "model and data (model=..., data=...) or drop init_from"
        ) from None
    log.info("initialised weights from %s", path)


class SweepJobFailed(CompactHydraException):
    """A job of a sweep stopped with a user error: the job is marked failed and the sweep goes on with the
    others; Hydra prints this one line when the sweep ends (and exits 1)."""


def _record_failure(err: BaseException) -> None:
    """`error.txt` in the run directory, so that `neurogrow report` lists the run as failed, with why."""
    try:
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "error.txt").write_text("".join(traceback.format_exception(err)))
    except (OSError, ValueError):
        pass  # recording the failure must never hide the error itself


@hydra.main(version_base="1.3", config_path=f"pkg://{CONFIG_PACKAGE}", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except Exception as err:  # turn known user mistakes into one clear line, not a traceback wall
        _record_failure(err)
        message = user_error_message(err)
        if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        hydra_cfg = HydraConfig.get()
        run_dir = hydra_cfg.runtime.output_dir
        print(
            f"neurogrow-train: error: {message}\n"
            f"(run directory: {run_dir}; set HYDRA_FULL_ERROR=1 for the traceback)",
            file=sys.stderr,
        )
        if str(hydra_cfg.mode) == "RunMode.MULTIRUN":  # SystemExit would end the whole sweep here
            raise SweepJobFailed(
                f"neurogrow-train: error: sweep job {hydra_cfg.job.num} failed: {message}"
            ) from None
        raise SystemExit(2) from None
    return metrics.get("test/acc")


def main() -> None:
    """Console-script entry point (`neurogrow-train`)."""
    if importlib.util.find_spec(CONFIG_PACKAGE) is None:  # e.g. an editable install older than setup.py
        sys.exit(
            f"neurogrow-train: error: the configs (package {CONFIG_PACKAGE}) are not installed; "
            "reinstall neurogrow (pip install -e . in a checkout)"
        )
    from neurogrow.surgery.config import old_override_message  # light: no torch, no Lightning

    old = old_override_message(sys.argv[1:])  # old surgery spellings: fail with the new one
    if old is not None:
        print(f"neurogrow-train: error: {old}", file=sys.stderr)
        raise SystemExit(2)
    try:
        _hydra_main()
    except SystemExit:  # Hydra exits when a sweep job failed, before the sweep's own report
        from neurogrow.report.hydra_callback import report_unfinished_sweep

        report_unfinished_sweep()
        raise


if __name__ == "__main__":
    main()
