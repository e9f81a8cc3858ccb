"""What does neuron surgery cost? Epoch-time ratio with/without the accumulating callback, and one event.

Two settings, each trained with a real Lightning `Trainer` and `LongTailClassifier`:
  cifar:    ResNet-32 on CIFAR-10-LT (IF=100, the real datamodule from the offline copy), batch 128;
  resnet50: ResNet-50 at 224 px on a few batches of synthetic images (ImageNet-LT is not available
            offline), 1000 classes with an ImageNet-LT-like exponential profile, batch 16.
For each, `--rounds` alternating pairs of one-epoch runs (`limit_train_batches`) are timed batch by
batch: without the callback, and with it in an accumulation epoch (the worst case; epochs that do not
accumulate only pay for a few hook calls that return at once). The first batch of each run is left out
(warm-up, and the one-off group finding + verification, reported separately). On a shared machine batch
times swing with other jobs' load, so the ratio is also computed from the callback's own per-step work
(the batch weight and one accumulator update, fastest of 20) over the fastest plain batch: the overhead
as it would be on an idle machine. The event (score, choose, split/remove in place, optimizer repair,
logging) is timed by the callback. Goals: ratio < 1.03, event < 1 s.

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

import neurogrow.models  # noqa: E402, F401  (registers the CIFAR ResNets with timm)
from neurogrow.data import CIFAR10LTDataModule  # noqa: E402
from neurogrow.models.module import LongTailClassifier  # noqa: E402
from neurogrow.surgery.callback import NeuronSurgery  # noqa: E402
from neurogrow.surgery.events import read_events  # noqa: E402
from neurogrow.surgery.scores import batch_weight  # noqa: E402


class BatchTimer(L.Callback):
    """Wall time of every training batch after the first (first in the callback list: it includes the
    surgery callback's per-batch hooks)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.times: list[float] = []
        self._t = 0.0

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._t = self._now()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx > 0:  # batch 0: warm-up, and the one-off group finding
            self.times.append(self._now() - self._t)


def accumulate_cost(
    surgery: NeuronSurgery, labels: torch.Tensor, device: torch.device, reps: int = 20
) -> float:
    """Fastest of `reps` timings of what the callback adds to one step: w_b from the labels + one update."""
    best = float("inf")
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        surgery.accumulator.update(batch_weight(labels, surgery._weights))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t)
    return best


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


def one_epoch(setting: dict, device: torch.device, surgery: bool, batches: int) -> dict:
    """One fresh one-epoch run: per-batch times, and with surgery the event / setup / per-step costs."""
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
    timer = BatchTimer(device)
    callbacks: list[L.Callback] = [timer]
    callback = NeuronSurgery(start_epoch=0, interval=1, ratio=0.1, input_size=setting["probe"])
    if surgery:
        callbacks.append(callback)
    with tempfile.TemporaryDirectory() as run_dir:
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
        out: dict = {"times": timer.times}
        if surgery:
            (event,) = read_events(run_dir)
            lines = (Path(run_dir) / "surgery_events.jsonl").read_text().splitlines()
            labels = next(iter(datamodule.train_dataloader()))[1].to(device)
            out.update(
                event=event["seconds"],
                groups=len(event["groups"]),
                setup=json.loads(lines[0])["seconds"],
                step_cost=accumulate_cost(callback, labels, device),
            )
    return out


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
        plain: list[dict] = []
        accum: list[dict] = []
        for _ in range(args.rounds):  # alternate, so slow drifts in machine load hit both alike
            plain.append(one_epoch(setting, device, False, setting["batches"]))
            accum.append(one_epoch(setting, device, True, setting["batches"]))
        p_all = [t for r in plain for t in r["times"]]
        a_all = [t for r in accum for t in r["times"]]
        med_ratio = statistics.median(a_all) / statistics.median(p_all)
        min_ratio = min(a_all) / min(p_all)
        step_cost = min(r["step_cost"] for r in accum)
        direct = 1.0 + step_cost / min(p_all)
        event_s = statistics.median(r["event"] for r in accum)
        plain_meds = [statistics.median(r["times"]) for r in plain]
        spread = max(plain_meds) / min(plain_meds)
        lines += [
            "",
            f"## {setting['title']}",
            f"batches timed: {len(p_all)} without / {len(a_all)} with the callback "
            f"({args.rounds} alternating rounds, first batch of each run left out)",
            f"seconds/batch without callback: min {min(p_all):.4f}  median {statistics.median(p_all):.4f}",
            f"seconds/batch accumulating:     min {min(a_all):.4f}  median {statistics.median(a_all):.4f}",
            f"callback work per step (w_b + accumulate, fastest of 20): {step_cost * 1e3:.2f} ms",
            f"epoch-time ratio: {direct:.4f} from the per-step cost / fastest batch;  "
            f"{min_ratio:.3f} fastest/fastest;  {med_ratio:.3f} median/median",
            f"  goal < 1.03: {'PASS' if direct < 1.03 else 'FAIL'} (per-step cost; the batch-time ratios are "
            "only as steady as the machine's load)",
            f"  noise: the median batch time of identical runs without the callback varied by {spread:.3f}x "
            f"({', '.join(f'{m:.3f}' for m in plain_meds)} s)",
            f"one surgery event ({accum[0]['groups']} groups): {event_s:.3f} s   goal < 1 s: "
            + ("PASS" if event_s < 1.0 else "FAIL"),
            f"one-off group finding + verification at the first batch: "
            f"{statistics.median(r['setup'] for r in accum):.2f} s",
        ]
        print("\n".join(lines[-11:]), flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
