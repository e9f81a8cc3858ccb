"""Class-aware samplers (Kang et al., "Decoupling Representation and Classifier", ICLR 2020).

Sampling probability of class j is p_j ∝ n_j^q: q = 1 instance-balanced, q = 0 class-balanced,
q = 1/2 square-root; progressively balanced interpolates instance- to class-balanced over the epochs.
Each sampler draws `num_samples` indices per epoch (default: the dataset size) with replacement
(a sample is picked with probability p_j / n_j), seeded by `seed + epoch`.

They subclass `DistributedSampler`, so under DDP Lightning leaves them in place (instead of wrapping
them) and calls `set_epoch` each epoch: every rank draws the same global list and keeps a disjoint
strided share. The instance-balanced default is no sampler at all (`sampler: null` = plain shuffle).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from neurogrow.errors import UserError


def _world(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    initialised = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if initialised else 1
    if rank is None:
        rank = dist.get_rank() if initialised else 0
    if not 0 <= rank < num_replicas:
        raise UserError(f"rank must be in [0, num_replicas={num_replicas}), got {rank}")
    return num_replicas, rank


class ClassAwareSampler(DistributedSampler):
    """Draws indices so that class j has probability ∝ n_j^q (the base of all neurogrow samplers)."""

    def __init__(
        self,
        labels: Sequence[int] | torch.Tensor,
        q: float = 0.0,
        num_samples: int | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
    ) -> None:
        labels = torch.as_tensor(labels, dtype=torch.long).flatten()
        if labels.numel() == 0 or bool((labels < 0).any()):
            raise UserError("labels must be a non-empty sequence of non-negative class indices")
        num_replicas, rank = _world(num_replicas, rank)
        super().__init__(labels, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.labels = labels
        self.q = q
        self.class_counts = torch.bincount(labels).double()
        self.total = int(num_samples) if num_samples is not None else labels.numel()
        if self.total <= 0:
            raise UserError(f"num_samples must be positive, got {num_samples}")
        self.num_samples = math.ceil(self.total / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def class_probabilities(self, epoch: int) -> torch.Tensor:
        """p_j for this epoch (0 for classes absent from `labels`)."""
        present = self.class_counts > 0
        p = torch.where(
            present, self.class_counts.clamp_min(1).pow(self.q), torch.zeros_like(self.class_counts)
        )
        return p / p.sum()

    def _global_indices(self, generator: torch.Generator) -> torch.Tensor:
        p = self.class_probabilities(self.epoch)
        sample_weight = (p / self.class_counts.clamp_min(1))[self.labels]
        return torch.multinomial(sample_weight, self.total_size, replacement=True, generator=generator)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return iter(self._global_indices(g)[self.rank : self.total_size : self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples


class ClassBalancedSampler(ClassAwareSampler):
    """Every class equally likely (q = 0)."""

    def __init__(self, labels: Sequence[int] | torch.Tensor, **kwargs: object) -> None:
        super().__init__(labels, q=0.0, **kwargs)


class SquareRootSampler(ClassAwareSampler):
    """p_j ∝ sqrt(n_j) (q = 1/2; Mahajan et al. 2018, Kang et al. 2020)."""

    def __init__(self, labels: Sequence[int] | torch.Tensor, **kwargs: object) -> None:
        super().__init__(labels, q=0.5, **kwargs)


class ProgressivelyBalancedSampler(ClassAwareSampler):
    """p_j(e) = (1 - λ) p_j^IB + λ p_j^CB with λ = e / (T - 1), T = `total_epochs` (Kang et al.).

    As classifier-balancing's `ClassPrioritySampler` (`lams = np.linspace(0, 1, epochs)`, epoch clipped
    to T - 1): the first epoch is instance-balanced and the last one fully class-balanced; with T = 1 the
    single epoch is instance-balanced (λ = 0), as there.
    """

    def __init__(self, labels: Sequence[int] | torch.Tensor, total_epochs: int, **kwargs: object) -> None:
        super().__init__(labels, q=1.0, **kwargs)
        if total_epochs < 1:
            raise UserError(f"total_epochs must be >= 1 (set it to trainer.max_epochs), got {total_epochs}")
        self.total_epochs = total_epochs

    def class_probabilities(self, epoch: int) -> torch.Tensor:
        present = (self.class_counts > 0).double()
        instance = self.class_counts / self.class_counts.sum()
        balanced = present / present.sum()
        lam = self.mixing(epoch)
        return (1.0 - lam) * instance + lam * balanced

    def mixing(self, epoch: int) -> float:
        """λ of `epoch`: `np.linspace(0, 1, T)[clip(epoch, 0, T - 1)]` of the reference."""
        if self.total_epochs == 1:
            return 0.0
        return min(max(epoch, 0), self.total_epochs - 1) / (self.total_epochs - 1)


class DeferredResampler(ClassAwareSampler):
    """Deferred re-sampling (DRS, Cao et al. 2019): plain shuffling before `start_epoch`, then p_j ∝ n_j^q.

    Before the switch each epoch is a seeded permutation of the dataset (every sample once), as
    instance-balanced training without a sampler; from `start_epoch` on it draws class-balanced
    (q = 0, the default) or square-root (q = 1/2) batches.
    """

    def __init__(
        self, labels: Sequence[int] | torch.Tensor, start_epoch: int = 160, q: float = 0.0, **kwargs: object
    ) -> None:
        super().__init__(labels, q=q, **kwargs)
        if start_epoch < 0:
            raise UserError(f"start_epoch must be >= 0, got {start_epoch}")
        self.start_epoch = start_epoch

    @property
    def active(self) -> bool:
        return self.epoch >= self.start_epoch

    def _global_indices(self, generator: torch.Generator) -> torch.Tensor:
        if self.active:
            return super()._global_indices(generator)
        n = self.labels.numel()
        reps = math.ceil(self.total_size / n)
        return torch.cat([torch.randperm(n, generator=generator) for _ in range(reps)])[: self.total_size]
