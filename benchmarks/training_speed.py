"""How fast does neurogrow train on this CPU? neurogrow's Trainer vs a raw PyTorch loop, fp32 vs bf16,
NCHW vs channels_last, for ResNet-32 and ResNet-18 (small-input) at 32 px, batch 128.

Every variant trains the same architecture on the same data path (the real CIFAR-10-LT datamodule: in-memory
uint8 batches, batched crop/flip/normalise) with the same optimizer (SGD, momentum 0.9, weight decay 2e-4 off
norms and biases). "raw" is a hand-written loop (autocast, forward, cross-entropy, backward, step);
"neurogrow" is `LongTailClassifier` under a Lightning `Trainer` with the CSV logger, exactly as
`neurogrow-train` runs it. Variants are interleaved round by round in one process (A, B, C, ... A, B, C, ...),
so load from other jobs hits all of them alike; the table reports the median step time over rounds and the
ratios that matter. The first step of each round is left out (warm-up).

    python benchmarks/training_speed.py [--rounds 3] [--steps 3] [--models resnet32_cifar resnet18]
        [--threads 2] [--out benchmarks/results/training_speed.txt]
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from timm.optim import param_groups_weight_decay

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: use this checkout's package

import neurogrow  # noqa: E402, F401  (registers resnet32_cifar with timm)
from neurogrow.data import CIFAR10LTDataModule  # noqa: E402
from neurogrow.models.module import LongTailClassifier  # noqa: E402
from neurogrow.precision import BF16_CPU_FLAGS, cpu_bf16_supported, cpu_flags, cpu_model  # noqa: E402

SMALL_INPUT = {"resnet32_cifar": False, "resnet18": True}
SGD = functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=2e-4)


def machine_lines() -> list[str]:
    flags = cpu_flags()
    shown = sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2")))
    return [
        f"cpu: {cpu_model()}  cores: {os.cpu_count()}  torch threads: {torch.get_num_threads()}",
        f"flags: {' '.join(shown)}",
        f"bf16 native ({'/'.join(BF16_CPU_FLAGS)}): {cpu_bf16_supported()}  "
        f"mkldnn: {torch.backends.mkldnn.is_available()}  "
        f"capability: {torch.backends.cpu.get_cpu_capability()}",
        f"torch {torch.__version__}  lightning {L.__version__}  python {platform.python_version()}",
    ]


class StepTimer(L.Callback):
    """Wall time between consecutive batch starts: everything the Trainer does per step."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._t: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._t is not None:
            self.times.append(now - self._t)
        self._t = now

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # the last step ends here
        if self._t is not None:
            self.times.append(time.perf_counter() - self._t)
        self._t = None


class Variant:
    """One (model, precision, layout, runner) setting with its own model and optimizer, trained on."""

    def __init__(self, dm: CIFAR10LTDataModule, backbone: str, bf16: bool, cl: bool, runner: str) -> None:
        self.dm, self.bf16, self.cl, self.runner = dm, bf16, cl, runner
        self.name = (backbone, "bf16" if bf16 else "fp32", "channels_last" if cl else "NCHW", runner)
        self.module = LongTailClassifier(
            backbone,
            dm.num_classes,
            dm.class_counts,
            small_input=SMALL_INPUT[backbone],
            optimizer=SGD,
            channels_last=cl,
        )
        self.times: list[float] = []
        if runner == "raw":
            self.model = self.module.model  # the bare timm network, no LightningModule around it
            self.optimizer = SGD(param_groups_weight_decay(self.model, 2e-4))
            self._batches: Iterator | None = None

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return next(self._batches)  # type: ignore[arg-type]
        except (StopIteration, TypeError):
            self._batches = iter(self.dm.train_dataloader())
            return next(self._batches)

    def _raw_step(self) -> None:
        x, y = self.dm.transform_batch(self._next_batch(), train=True)
        if self.cl:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            loss = F.cross_entropy(self.model(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def run_round(self, steps: int, tmp: Path) -> None:
        """`steps` timed steps after one warm-up step."""
        if self.runner == "raw":
            self._raw_step()
            for _ in range(steps):
                t = time.perf_counter()
                self._raw_step()
                self.times.append(time.perf_counter() - t)
            return
        timer = StepTimer()
        trainer = L.Trainer(
            accelerator="cpu",
            precision="bf16-mixed" if self.bf16 else "32-true",
            max_epochs=1,
            limit_train_batches=steps + 1,
            limit_val_batches=0,
            logger=CSVLogger(tmp),
            callbacks=[timer],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(self.module, datamodule=self.dm)
        self.times += timer.times[1:]  # first step: warm-up

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", nargs="+", default=["resnet32_cifar", "resnet18"], choices=list(SMALL_INPUT)
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant and round")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "training_speed.txt")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    L.seed_everything(0, verbose=False)
    dm = CIFAR10LTDataModule(
        data_dir=REPO / "data", shared_data_dir=REPO.parent / "shared" / "data", batch_size=128
    )
    dm.prepare_data()
    dm.setup("fit")
    precisions = [False, True] if cpu_bf16_supported() else [False]
    load0, start = os.getloadavg(), time.perf_counter()
    lines = ["# training speed (benchmarks/training_speed.py)", f"# {time.strftime('%Y-%m-%d %H:%M')}"]
    lines += [f"# {line}" for line in machine_lines()]
    if len(precisions) == 1:
        lines.append("# no native bf16 on this CPU: fp32 only (trainer=cpu_fast falls back to 32-true)")
    with tempfile.TemporaryDirectory() as tmp:
        for backbone in args.models:
            variants = [
                Variant(dm, backbone, bf16, cl, runner)
                for bf16 in precisions
                for cl in (False, True)
                for runner in ("raw", "neurogrow")
            ]
            for r in range(args.rounds):
                for v in variants:  # interleaved: every variant once per round
                    v.run_round(args.steps, Path(tmp))
                load = os.getloadavg()[0]
                print(f"{backbone}: round {r + 1}/{args.rounds} done, load {load:.1f}", flush=True)
            lines += report(backbone, variants, args)
    load1 = os.getloadavg()
    lines.insert(
        2 + len(machine_lines()),
        f"# load average (1/5/15 min) at start {load0[0]:.1f}/{load0[1]:.1f}/{load0[2]:.1f}, "
        f"at end {load1[0]:.1f}/{load1[1]:.1f}/{load1[2]:.1f} on {os.cpu_count()} cores: the machine is "
        "shared, absolute times are noisy; the ratios come from interleaved rounds",
    )
    lines.append(f"\n# total wall time {time.perf_counter() - start:.0f} s")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


def report(backbone: str, variants: list[Variant], args: argparse.Namespace) -> list[str]:
    by = {v.name[1:]: v for v in variants}
    lines = [
        f"\n## {backbone}{' (small-input)' if SMALL_INPUT[backbone] else ''}, 32 px, batch 128 "
        f"({args.rounds} rounds x {args.steps} timed steps per variant)",
        f"{'precision':<9} {'layout':<13} {'raw ms/step':>11} {'neurogrow ms/step':>17} "
        f"{'neurogrow/raw':>13}",
    ]
    for v in variants:
        if v.runner != "raw":
            continue
        ng = by[(v.name[1], v.name[2], "neurogrow")]
        lines.append(
            f"{v.name[1]:<9} {v.name[2]:<13} {v.median * 1e3:>11.0f} {ng.median * 1e3:>17.0f} "
            f"{ng.median / v.median:>13.3f}"
        )
    lines.append("speed-ups (time A / time B, >1 = B faster):")
    precisions = sorted({v.name[1] for v in variants}, reverse=True)  # fp32 first
    for runner in ("raw", "neurogrow"):
        if "bf16" in precisions:
            for layout in ("NCHW", "channels_last"):
                a, b = by[("fp32", layout, runner)], by[("bf16", layout, runner)]
                lines.append(f"  {runner:<9} {layout:<13} fp32 -> bf16: {a.median / b.median:.2f}x")
        for p in precisions:
            a, b = by[(p, "NCHW", runner)], by[(p, "channels_last", runner)]
            lines.append(f"  {runner:<9} {p:<13} NCHW -> channels_last: {a.median / b.median:.2f}x")
    return lines


if __name__ == "__main__":
    main()
