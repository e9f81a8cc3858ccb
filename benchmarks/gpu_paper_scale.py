"""The paper's scale on one GPU: CIFAR-10-LT IF=100, ResNet-32 and ResNet-18 (small-input), 150 epochs,
events after 30/60/90/120, conventional vs `surgery=default`, 3 seeds, the same report as `make bench`.

Both models train with `make bench`'s recipe (`experiment=cifar10_lt_ce`, LDAM-DRW's SGD with step decay at
80/90 % of training, `model=resnet18` for ResNet-18); the paper's own ResNet-18 recipe as main has it
(SGD + cosine) is `experiment=paper_cifar10_lt_baseline` / `paper_cifar10_lt_surgery`.

Built to fit in about 10 minutes on one H100 (not yet run on one: no GPU was lent while it was written):
- the in-memory uint8 CIFAR datamodule: a batch is one `index_select` and a 0.4 MB uint8 copy, the
  crop/flip/normalise (`neurogrow.data.batch_augment`) runs on the GPU;
- bf16 autocast (`trainer.precision=bf16-mixed`) and channels_last weights and inputs (`model.channels_last`);
- all runs at once (`--concurrent`, default 12 = 2 models x 2 arms x 3 seeds; the models' pools run side by
  side, each with its share): one ResNet-32 at batch 128 cannot saturate an H100, so the runs share it as
  separate processes (one CPU thread each);
- no per-epoch evaluation (the test set once, at the end).
`torch.compile` is not used: its gain on these small models could not be measured without a GPU
(neuron surgery edits weights in place and never changes a shape, so it need not force recompiles; untested).

Results land in `benchmarks/results/gpu_paper_scale/<model>/<arm>_seed<k>/` (slim copies; full runs in the
ignored `outputs/gpu_paper_scale/`) and the reports in `benchmarks/results/gpu_paper_scale_<model>.md`;
reruns skip finished runs, `--commit` commits each. Compare with the paper: ResNet-18 72.2 -> 75.4.

    python benchmarks/gpu_paper_scale.py --commit          # on the GPU machine
    python benchmarks/gpu_paper_scale.py --cpu-smoke --results /tmp/g --scratch /tmp/g_runs   # code path, CPU
"""

from __future__ import annotations

import argparse
import copy
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import does_it_help  # the same runner, pairing check and report as `make bench`)

REPO = Path(__file__).resolve().parents[1]
MODELS = {"resnet32_cifar": "ResNet-32", "resnet18": "ResNet-18 (small-input)"}
GPU = ("trainer=gpu", "trainer.precision=bf16-mixed", "model.channels_last=true")
# The CPU smoke test: the same code path (channels_last, the whole runner and report) in seconds.
CPU_SMOKE = (
    "trainer=cpu",
    "trainer.precision=32-true",
    "model.channels_last=true",
    "data.batch_size=16",
    "data.eval_batch_size=250",
    "trainer.limit_test_batches=1",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=12, help="runs sharing the GPU at the same time")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "gpu_paper_scale")
    parser.add_argument("--scratch", type=Path, default=REPO / "outputs" / "gpu_paper_scale")
    parser.add_argument("--commit", action="store_true", help="git add + commit every finished run")
    parser.add_argument("--cpu-smoke", action="store_true", help="2 epochs x 2 batches, 1 seed, on the CPU")
    parser.add_argument("extra", nargs="*", help="further neurogrow-train overrides for every run")
    args = parser.parse_args()
    hardware = GPU
    args.limit_train_batches = None
    if args.cpu_smoke:
        hardware = CPU_SMOKE
        args.epochs, args.seeds, args.limit_train_batches = 2, 1, 2
        args.concurrent = min(args.concurrent, 2)
    # One pool per model keeps results and reports per model; the pools run side by side, so all
    # `--concurrent` runs share the GPU at once.
    share = max(1, args.concurrent // len(args.models))

    def run_model(model: str) -> None:
        own = copy.copy(args)
        own.results, own.scratch = args.results / model, args.scratch / model
        own.processes, own.threads = share, 1
        own.report = args.results.parent / f"{args.results.name}_{model}.md"
        own.extra = [f"model={'resnet18' if model == 'resnet18' else 'resnet32_cifar'}", *args.extra]
        does_it_help.run_all(own, hardware=hardware)
        title = f"Paper scale on one GPU: CIFAR-10-LT IF=100, {MODELS[model]}, {args.epochs} epochs"
        does_it_help.write_report(own, title=title)

    with ThreadPoolExecutor(len(args.models)) as pool:
        for done in [pool.submit(run_model, model) for model in args.models]:
            done.result()  # a failed model's error, after the others finished


if __name__ == "__main__":
    main()
