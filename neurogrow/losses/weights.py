"""Per-class loss weights from class counts: inverse frequency and the effective number of samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from neurogrow.errors import UserError

WeightScheme = Literal["inverse_frequency", "effective_number", "none"]


def class_weights(
    class_counts: Sequence[int] | torch.Tensor,
    scheme: WeightScheme = "effective_number",
    beta: float = 0.9999,
) -> torch.Tensor:
    """Per-class weights normalised to sum to the number of classes (as Cui et al. 2019 and LDAM-DRW).

    - ``inverse_frequency``: w_c ∝ 1 / n_c.
    - ``effective_number`` (Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
      CVPR 2019): w_c ∝ (1 - β) / (1 - β^n_c); β = 0 gives uniform weights, β → 1 inverse frequency.
    - ``none``: all ones.
    """
    counts = torch.as_tensor(class_counts, dtype=torch.float64)
    if counts.ndim != 1 or counts.numel() == 0 or bool((counts <= 0).any()):
        raise UserError(f"class_counts must be a non-empty list of positive counts, got {counts.tolist()}")
    if scheme == "inverse_frequency":
        w = 1.0 / counts
    elif scheme == "effective_number":
        if not 0.0 <= beta < 1.0:
            raise UserError(f"beta must be in [0, 1) for effective-number weights, got {beta}")
        w = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts))
    elif scheme == "none":
        w = torch.ones_like(counts)
    else:
        raise UserError(
            f"unknown weight scheme {scheme!r}; use 'inverse_frequency', 'effective_number' or 'none'"
        )
    return (w / w.sum() * counts.numel()).float()
