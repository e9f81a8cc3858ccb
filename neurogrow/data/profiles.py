"""Long-tailed class-count profiles and the standard CIFAR-LT subsampling.

Everything here reproduces LDAM-DRW's ``imbalance_cifar.py`` (Cao et al. 2019) exactly, because CIFAR-LT
numbers are only comparable across papers when the same images are kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from neurogrow.errors import UserError

__all__ = ["balanced_holdout", "long_tail_counts", "subsample_long_tail", "validate_imbalance"]

IMB_TYPES = ("exp", "step")


def validate_imbalance(imb_factor: float, imb_type: str) -> None:
    """Raise a helpful `UserError` for an impossible imbalance setting."""
    if isinstance(imb_factor, bool) or not isinstance(imb_factor, (int, float, np.number)):
        raise UserError(f"data.imbalance_factor must be a number, got {imb_factor!r}; e.g. 100.")
    if imb_type not in IMB_TYPES:
        raise UserError(f"imbalance_type must be one of {IMB_TYPES}, got {imb_type!r}.")
    if not imb_factor >= 1:
        raise UserError(
            f"imbalance_factor must be >= 1 (ratio of the largest to the smallest class; 1 = balanced), "
            f"got {imb_factor!r}. For CIFAR-10-LT the usual values are 10, 50, 100 or 200."
        )


def long_tail_counts(img_max: int, num_classes: int, imb_factor: float, imb_type: str = "exp") -> list[int]:
    """Images per class, index = label, as in LDAM-DRW's ``get_img_num_per_cls``.

    exp:  ``n_i = int(img_max * (1 / IF) ** (i / (C - 1)))``;
    step: the first ``C // 2`` classes keep ``img_max``, the others get ``int(img_max / IF)``.
    """
    validate_imbalance(imb_factor, imb_type)
    if num_classes < 1 or img_max < 1:
        raise UserError(f"need num_classes >= 1 and img_max >= 1, got {num_classes} and {img_max}.")
    if num_classes == 1:
        return [int(img_max)]
    img_factor = 1.0 / imb_factor
    if imb_type == "exp":
        return [int(img_max * img_factor ** (i / (num_classes - 1.0))) for i in range(num_classes)]
    half = num_classes // 2
    return [int(img_max)] * half + [int(img_max * img_factor)] * (num_classes - half)


def subsample_long_tail(
    labels: Sequence[int] | np.ndarray | torch.Tensor, counts: Sequence[int], seed: int = 0
):
    """Indices kept by LDAM-DRW's ``gen_imbalanced_data``: ``np.random.seed(seed)`` once, then for each
    class in label order shuffle that class's indices (in dataset order) and keep the first ``n_i``.

    Returns a 1-D int64 numpy array of indices into ``labels``, grouped by class in label order.
    The global numpy RNG state is saved and restored, so calling this has no side effect elsewhere.
    """
    targets = np.asarray(labels, dtype=np.int64)
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        kept = []
        for cls, n in enumerate(counts):
            idx = np.where(targets == cls)[0]
            if len(idx) < n:
                raise UserError(
                    f"class {cls} has {len(idx)} images but the profile asks for {n}; lower img_max "
                    f"or check that the dataset is complete."
                )
            np.random.shuffle(idx)
            kept.append(idx[:n])
    finally:
        np.random.set_state(state)
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def balanced_holdout(
    labels: Sequence[int] | np.ndarray | torch.Tensor, per_class: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split positions ``0..len(labels)-1`` into (keep, holdout) with ``per_class`` holdout images per class.

    The holdout takes the *last* ``per_class`` positions of each class. Applied to the output of
    :func:`subsample_long_tail` (already a random draw per class) this is a random balanced sample that
    does not touch the RNG, so the training images stay a subset of the paper's LT set.
    """
    targets = np.asarray(labels, dtype=np.int64)
    keep, hold = [], []
    for cls in range(num_classes):
        pos = np.where(targets == cls)[0]
        if len(pos) <= per_class:
            raise UserError(
                f"val_per_class={per_class} but class {cls} has only {len(pos)} training images, so no "
                f"training image would be left; use val_per_class < {max(len(pos), 1)} or set it to 0 "
                f"(validate on the test set, the papers' protocol)."
            )
        keep.append(pos[: len(pos) - per_class])
        hold.append(pos[len(pos) - per_class :])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(hold))
