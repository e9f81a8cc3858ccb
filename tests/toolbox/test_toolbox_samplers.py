"""Class frequencies of each sampler over many draws, DDP sharding and epoch seeding."""

from __future__ import annotations

import pytest
import torch

from neurogrow.data.samplers import (
    ClassBalancedSampler,
    DeferredResampler,
    ProgressivelyBalancedSampler,
    SquareRootSampler,
)

COUNTS = torch.tensor([400, 100, 25, 4])
LABELS = torch.repeat_interleave(torch.arange(4), COUNTS)[
    torch.randperm(int(COUNTS.sum()), generator=torch.Generator().manual_seed(0))
]


def class_frequencies(sampler, epochs: int = 40) -> torch.Tensor:
    hist = torch.zeros(4)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        hist += torch.bincount(LABELS[list(sampler)], minlength=4)
    return hist / hist.sum()


def test_class_balanced_frequencies_are_uniform() -> None:
    freq = class_frequencies(ClassBalancedSampler(labels=LABELS))
    assert freq.tolist() == pytest.approx([0.25] * 4, abs=0.015)


def test_square_root_frequencies() -> None:
    expected = COUNTS.double().sqrt() / COUNTS.double().sqrt().sum()  # 20:10:5:2
    freq = class_frequencies(SquareRootSampler(labels=LABELS))
    assert freq.tolist() == pytest.approx(expected.tolist(), abs=0.015)


def test_progressive_moves_from_instance_to_class_balanced() -> None:
    sampler = ProgressivelyBalancedSampler(labels=LABELS, total_epochs=10)
    instance = (COUNTS / COUNTS.sum()).double()
    assert sampler.class_probabilities(0).tolist() == pytest.approx(instance.tolist())
    lam = 5 / 9  # λ = e / (T - 1), classifier-balancing's np.linspace(0, 1, T)[e]
    mixed = (1 - lam) * instance + lam * 0.25
    assert sampler.class_probabilities(5).tolist() == pytest.approx(mixed.tolist())
    assert sampler.class_probabilities(9).tolist() == pytest.approx([0.25] * 4)  # the last epoch
    assert sampler.class_probabilities(10).tolist() == pytest.approx([0.25] * 4)
    sampler.set_epoch(9)
    hist = torch.bincount(LABELS[list(sampler)], minlength=4).double()
    for epoch in range(11, 40):
        sampler.set_epoch(epoch)
        hist += torch.bincount(LABELS[list(sampler)], minlength=4)
    assert (hist / hist.sum()).tolist() == pytest.approx([0.25] * 4, abs=0.015)


def test_length_and_epoch_seeding() -> None:
    sampler = ClassBalancedSampler(labels=LABELS, seed=3)
    assert len(sampler) == len(LABELS) == len(list(sampler))
    sampler.set_epoch(1)
    first = list(sampler)
    assert list(sampler) == first  # same epoch: same draw
    sampler.set_epoch(2)
    assert list(sampler) != first
    assert len(ClassBalancedSampler(labels=LABELS, num_samples=100)) == 100


def test_ranks_draw_disjoint_shares_of_one_global_draw() -> None:
    world = 3
    shards = [ClassBalancedSampler(labels=LABELS, num_replicas=world, rank=r, seed=7) for r in range(world)]
    for s in shards:
        s.set_epoch(4)
    lists = [list(s) for s in shards]
    assert len({len(x) for x in lists}) == 1  # equal length on every rank (no DDP hang)
    single = ClassBalancedSampler(
        labels=LABELS, num_replicas=1, rank=0, seed=7, num_samples=len(lists[0]) * world
    )
    single.set_epoch(4)
    merged = [lists[r][i] for i in range(len(lists[0])) for r in range(world)]
    assert merged == list(single)  # the shares interleave back into the global draw: disjoint positions
    # a DeferredResampler before its switch is a permutation split across ranks: disjoint indices
    drs = [DeferredResampler(labels=LABELS, start_epoch=5, num_replicas=world, rank=r) for r in range(world)]
    parts = [list(s) for s in drs]
    assert len(set().union(*parts)) == len(LABELS)  # every sample is drawn by some rank
    padding = world * len(parts[0]) - len(LABELS)  # as DistributedSampler: pad to equal shares (529 -> 531)
    assert sum(len(set(p)) for p in parts) == len(LABELS) + padding


def test_deferred_resampler_switches_at_start_epoch() -> None:
    sampler = DeferredResampler(labels=LABELS, start_epoch=2)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        assert not sampler.active
        assert sorted(sampler) == list(range(len(LABELS)))  # instance-balanced: every sample once
    sampler.set_epoch(2)
    assert sampler.active
    assert class_frequencies_from(sampler, range(2, 40)).tolist() == pytest.approx([0.25] * 4, abs=0.015)


def class_frequencies_from(sampler, epochs) -> torch.Tensor:
    hist = torch.zeros(4)
    for epoch in epochs:
        sampler.set_epoch(epoch)
        hist += torch.bincount(LABELS[list(sampler)], minlength=4)
    return hist / hist.sum()


def test_bad_sampler_options() -> None:
    with pytest.raises(ValueError, match="total_epochs"):
        ProgressivelyBalancedSampler(labels=LABELS, total_epochs=0)
    with pytest.raises(ValueError, match="non-negative class indices"):
        ClassBalancedSampler(labels=[])
    with pytest.raises(ValueError, match="rank"):
        ClassBalancedSampler(labels=LABELS, num_replicas=2, rank=2)
