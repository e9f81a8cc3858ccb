"""How much of a CIFAR-10-LT training step is spent waiting for data?

CIFAR-10-LT (IF=100) from the cache, ResNet-32, batch 128, SGD. For each step it times separately
  data:    next batch from the DataLoader + host-to-device copy (uint8) + batched crop/flip/normalise
           (what ``on_after_batch_transfer`` runs), and
  compute: forward + loss + backward + optimizer step,
synchronising the device after each, over ``--steps`` steps after ``--warmup`` steps. Goal: data < 5 %.
For reference it also times the classic per-sample PIL pipeline (RandomCrop + flip + ToTensor +
Normalize per image, default collate) for the same batches.

    python benchmarks/data_pipeline.py [--device cpu|cuda] [--steps 50] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from torchvision import transforms as T

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: use this checkout's package

import neurogrow.models  # noqa: E402, F401  (registers the CIFAR ResNets with timm)
from neurogrow.data import CIFAR10LTDataModule  # noqa: E402
from neurogrow.data.batch_augment import CIFAR10_MEAN, CIFAR10_STD  # noqa: E402
from neurogrow.precision import cpu_model  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _pil_reference(images: torch.Tensor, batches: int, batch_size: int) -> float:
    """Mean seconds to build one batch the per-sample way (PIL transforms + default collate)."""
    tf = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(CIFAR10_MEAN, CIFAR10_STD),
        ]
    )
    arr = images.numpy()
    times = []
    for _ in range(batches):
        idx = np.random.randint(0, len(arr), batch_size)
        t0 = time.perf_counter()
        torch.stack([tf(Image.fromarray(arr[i])) for i in idx])
        times.append(time.perf_counter() - t0)
    return statistics.mean(times)


def run(args: argparse.Namespace) -> str:
    device = torch.device(args.device)
    torch.manual_seed(0)
    dm = CIFAR10LTDataModule(
        data_dir=args.data_dir,
        shared_data_dir=args.shared_data_dir,
        imbalance_factor=100,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )
    t0 = time.perf_counter()
    dm.prepare_data()
    dm.setup("fit")
    load_s = time.perf_counter() - t0
    model = timm.create_model("resnet32_cifar", num_classes=dm.num_classes).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
    crit = torch.nn.CrossEntropyLoss()
    model.train()

    data_t, comp_t = [], []
    it = iter(dm.train_dataloader())
    for step in range(args.warmup + args.steps):
        _sync(device)
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            it = iter(dm.train_dataloader())
            batch = next(it)
        x, y = (t.to(device, non_blocking=True) for t in batch)
        x, y = dm.transform_batch((x, y), train=True)
        _sync(device)
        t1 = time.perf_counter()
        loss = crit(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        t2 = time.perf_counter()
        if step >= args.warmup:
            data_t.append(t1 - t0)
            comp_t.append(t2 - t1)

    pil_s = _pil_reference(dm.train_dataset.images, batches=args.pil_batches, batch_size=args.batch_size)
    data_ms, comp_ms = 1e3 * statistics.mean(data_t), 1e3 * statistics.mean(comp_t)
    share = 100 * sum(data_t) / (sum(data_t) + sum(comp_t))
    pil_share = 100 * pil_s * 1e3 / (pil_s * 1e3 + comp_ms)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    lines = [
        "neurogrow data-pipeline benchmark: CIFAR-10-LT IF=100, ResNet-32, batch "
        f"{args.batch_size}, SGD, {args.steps} steps after {args.warmup} warm-up",
        f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), device {dev_name}, load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"data source: {dm.data_source}; cache load + LT subsampling: {load_s:.2f} s; "
        f"{len(dm.train_dataset)} training images; DataLoader workers: {args.num_workers}",
        "",
        f"{'per step':<52}{'mean ms':>10}{'median ms':>11}{'p90 ms':>9}",
        f"{'data (fetch + to(device) + batched crop/flip/norm)':<52}{data_ms:>10.2f}"
        f"{1e3 * statistics.median(data_t):>11.2f}{1e3 * np.percentile(data_t, 90):>9.2f}",
        f"{'compute (forward + backward + SGD step)':<52}{comp_ms:>10.2f}"
        f"{1e3 * statistics.median(comp_t):>11.2f}{1e3 * np.percentile(comp_t, 90):>9.2f}",
        "",
        f"share of a training step waiting for data: {share:.2f} % (goal < 5 %): "
        f"{'OK' if share < 5 else 'ABOVE GOAL'}",
        f"reference, per-sample PIL transforms instead: {1e3 * pil_s:.2f} ms per batch, "
        f"would be {pil_share:.1f} % of a step",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--pil-batches", type=int, default=10, help="batches timed for the PIL reference")
    p.add_argument("--data-dir", default=str(REPO / "data"))
    p.add_argument("--shared-data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "data_pipeline.txt"))
    args = p.parse_args(argv)
    text = run(args)
    print(text, end="")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return text


if __name__ == "__main__":
    main()
