"""What does neuron surgery cost? Epoch-time ratio with/without the accumulating callback, and one event.

Two settings, each trained with a real Lightning `Trainer` and `LongTailClassifier`:
  cifar:    ResNet-32 on CIFAR-10-LT (IF=100, the real datamodule from the offline copy), batch 128;
  resnet50: ResNet-50 at 224 px on a few batches of synthetic images (ImageNet-LT is not available
            offline), 1000 classes with an ImageNet-LT-like exponential profile, batch 16.
For each, `--rounds` alternating pairs of one-epoch runs (`limit_train_batches`) are timed: without the
callback, and with it in an accumulation epoch (the worst case; epochs that do not accumulate only pay
for a few hook calls that return at once). Timing starts after the first batch (warm-up, and the
one-off group finding + verification, which is reported separately) and stops before the event.
The event (score, choose, split/remove in place, optimizer repair, logging) is timed by the callback.
Goals: ratio < 1.03, event < 1 s.

    python benchmarks/surgery_overhead.py [--device cpu|cuda] [--rounds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: use this checkout's package

import neurogrow  # noqa: E402, F401  (registers resnet32_cifar with timm)
from neurogrow.data import CIFAR10LTDataModule  # noqa: E402
from neurogrow.models.module import LongTailClassifier  # noqa: E402
from neurogrow.surgery.callback import NeuronSurgery  # noqa: E402
from neurogrow.surgery.events import read_events  # noqa: E402


class EpochTimer(L.Callback):
    """Wall time from the end of batch 0 to the end of the epoch (before any later callback's hook)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.start = self.stop = 0.0
        self.batches = 0

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.start = self._now()
        self.batches = batch_idx

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.stop = self._now()

    @property
    def per_batch(self) -> float:
        return (self.stop - self.start) / max(self.batches, 1)


class SyntheticLongTail(L.LightningDataModule):
    """Random 224 px images with labels drawn from a long-tailed 1000-class profile."""

    def __init__(self, batches: int, batch_size: int, num_classes: int = 1000) -> None:
        super().__init__()
        counts = [max(5, round(1280 * (5 / 1280) ** (i / (num_classes - 1)))) for i in range(num_classes)]
        self.class_counts = counts
        g = torch.Generator().manual_seed(0)
        n = batches * batch_size
        probs = torch.tensor(counts, dtype=torch.float)
        self.labels = torch.multinomial(probs / probs.sum(), n, replacement=True, generator=g)
        self.images = torch.randn(n, 3, 224, 224, generator=g)
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.images, self.labels), batch_size=self.batch_size)


def one_epoch(setting: dict, device: torch.device, surgery: bool, batches: int) -> tuple[float, float | None]:
    """(seconds per batch after the first, event seconds or None) for one fresh one-epoch run."""
    datamodule = setting["data"]()
    datamodule.prepare_data()
    datamodule.setup("fit")
    torch.manual_seed(0)
    module = LongTailClassifier(
        setting["model"],
        len(datamodule.class_counts),
        datamodule.class_counts,
        optimizer=functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9, weight_decay=2e-4),
    )
    timer = EpochTimer(device)
    callbacks: list[L.Callback] = [timer]
    with tempfile.TemporaryDirectory() as run_dir:
        if surgery:
            callbacks.append(NeuronSurgery(start_epoch=0, interval=1, ratio=0.1, input_size=setting["probe"]))
        trainer = L.Trainer(
            accelerator=device.type,
            devices=1,
            max_epochs=1,
            limit_train_batches=batches,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            callbacks=callbacks,
            default_root_dir=run_dir,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(module, datamodule=datamodule)
        event = None
        if surgery:
            events = read_events(run_dir)
            lines = (Path(run_dir) / "surgery_events.jsonl").read_text().splitlines()
            setup_seconds = json.loads(lines[0])["seconds"]
            event = (events[0]["seconds"], setup_seconds, len(events[0]["groups"]))
    return timer.per_batch, event


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cifar-batches", type=int, default=30)
    parser.add_argument("--r50-batches", type=int, default=6)
    parser.add_argument("--r50-batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = default)")
    parser.add_argument("--only", choices=["cifar", "resnet50"], default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    shared = REPO.parent / "shared" / "data"
    settings = {
        "cifar": {
            "title": "ResNet-32, CIFAR-10-LT (IF=100, real datamodule), batch 128",
            "model": "resnet32_cifar",
            "data": lambda: CIFAR10LTDataModule(
                data_dir=REPO / "data", shared_data_dir=shared, batch_size=128
            ),
            "batches": args.cifar_batches,
            "probe": None,  # the first training batch
        },
        "resnet50": {
            "title": f"ResNet-50, 224 px synthetic long-tailed data, batch {args.r50_batch_size}",
            "model": "resnet50",
            "data": lambda: SyntheticLongTail(args.r50_batches, args.r50_batch_size),
            "batches": args.r50_batches,
            "probe": (3, 64, 64),  # groups do not depend on resolution; a small probe keeps setup short
        },
    }
    lines = [
        "# neuron surgery overhead (benchmarks/surgery_overhead.py)",
        f"# {time.strftime('%Y-%m-%d %H:%M')}  device={device}  torch={torch.__version__}  "
        f"threads={torch.get_num_threads()}  cpus={os.cpu_count()}  {platform.machine()}",
    ]
    for key, setting in settings.items():
        if args.only and key != args.only:
            continue
        plain, accum, events = [], [], []
        for _ in range(args.rounds):  # alternate, so slow drifts in machine load hit both alike
            plain.append(one_epoch(setting, device, False, setting["batches"])[0])
            t, ev = one_epoch(setting, device, True, setting["batches"])
            accum.append(t)
            events.append(ev)
        ratios = [a / p for a, p in zip(accum, plain)]
        ratio = statistics.median(accum) / statistics.median(plain)
        event_s = statistics.median(e[0] for e in events)
        lines += [
            "",
            f"## {setting['title']}",
            f"batches timed per run: {setting['batches'] - 1} (after the first), rounds: {args.rounds}",
            f"seconds/batch without callback: {statistics.median(plain):.4f}  (runs: "
            + ", ".join(f"{x:.4f}" for x in plain)
            + ")",
            f"seconds/batch accumulating:     {statistics.median(accum):.4f}  (runs: "
            + ", ".join(f"{x:.4f}" for x in accum)
            + ")",
            f"epoch-time ratio (median/median): {ratio:.3f}   per round: "
            + ", ".join(f"{r:.3f}" for r in ratios)
            + f"   goal < 1.03: {'PASS' if ratio < 1.03 else 'FAIL'}",
            f"one surgery event ({events[0][2]} groups): {event_s:.3f} s   goal < 1 s: "
            + ("PASS" if event_s < 1.0 else "FAIL"),
            f"one-off group finding + verification at the first batch: "
            f"{statistics.median(e[1] for e in events):.2f} s",
        ]
        print("\n".join(lines[-7:]), flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
