"""Cross-entropy and the losses that are cross-entropy on adjusted logits.

Every loss here is `F.cross_entropy(adjust(logits, targets), targets, weight=class_weights,
label_smoothing=...)`, so label smoothing and (deferred) re-weighting combine with all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from neurogrow.errors import UserError
from neurogrow.losses.base import LongTailLoss
from neurogrow.losses.weights import WeightScheme, class_weights


class CrossEntropy(LongTailLoss):
    """Softmax cross-entropy; `label_smoothing` as in `torch.nn.functional.cross_entropy`."""

    def __init__(self, class_counts: Sequence[int], label_smoothing: float = 0.0) -> None:
        super().__init__(class_counts)
        if not 0.0 <= label_smoothing < 1.0:
            raise UserError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def adjust_logits(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Hook for subclasses: the logits the cross-entropy is computed on (training only)."""
        return logits

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            self.adjust_logits(logits, targets),
            targets,
            weight=self.class_weights,
            label_smoothing=self.label_smoothing,
        )


class WeightedCrossEntropy(CrossEntropy):
    """Class-weighted cross-entropy: inverse frequency, or Cui et al. 2019's effective number (β)."""

    def __init__(
        self,
        class_counts: Sequence[int],
        scheme: WeightScheme = "effective_number",
        beta: float = 0.9999,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(class_counts, label_smoothing=label_smoothing)
        self.scheme, self.beta = scheme, beta
        self.set_class_weights(class_weights(class_counts, scheme=scheme, beta=beta))


class LogitAdjustedLoss(CrossEntropy):
    """Menon et al., "Long-tail learning via logit adjustment", ICLR 2021: CE on logits + τ·log π."""

    def __init__(self, class_counts: Sequence[int], tau: float = 1.0, label_smoothing: float = 0.0) -> None:
        super().__init__(class_counts, label_smoothing=label_smoothing)
        self.tau = tau

    def adjust_logits(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return logits + self.tau * self.log_prior.to(logits.dtype)


class BalancedSoftmax(CrossEntropy):
    """Ren et al., "Balanced Meta-Softmax for Long-Tailed Visual Recognition", NeurIPS 2020.

    Softmax with the class counts in the normaliser, i.e. CE on logits + log n_c (= logits + log π up
    to a constant, which the softmax ignores).
    """

    def adjust_logits(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return logits + self.log_prior.to(logits.dtype)


class LDAMLoss(CrossEntropy):
    """Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss", NeurIPS 2019.

    As the official `losses.py`: margins m_c = C / n_c^(1/4) with C chosen so the largest margin is
    `max_m`; the true-class logit is reduced by m_y and all logits are scaled by `s` before the CE. The
    paper's `s = 30` assumes its cosine classifier: with `normed_head` (the default) the model's
    classifier is a `neurogrow.models.heads.NormedLinear`; on a plain linear head use `s = 1`.
    """

    def __init__(
        self,
        class_counts: Sequence[int],
        max_m: float = 0.5,
        s: float = 30.0,
        label_smoothing: float = 0.0,
        normed_head: bool = True,
    ) -> None:
        super().__init__(class_counts, label_smoothing=label_smoothing)
        if max_m <= 0 or s <= 0:
            raise UserError(f"LDAM needs max_m > 0 and s > 0, got max_m={max_m}, s={s}")
        self.max_m, self.s, self.normed_head = max_m, s, normed_head
        m = self.class_counts.pow(-0.25)
        self.register_buffer("margins", m * (max_m / m.max()), persistent=False)

    def adjust_logits(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        margin = torch.zeros_like(logits).scatter_(
            1, targets[:, None], self.margins.to(logits.dtype)[targets, None]
        )
        return self.s * (logits - margin)
