"""Shared pieces of the surgery tests: one intra-op thread, and the tiny data they train on."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import TinyLongTailData

COUNTS = [24, 12, 6, 6]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread; intra-op threads thrash when the CPUs are shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_long_tail(batch_size: int = 16) -> TinyLongTailData:
    """48 random 32x32 images with long-tailed labels sorted by class, unshuffled (runs are reproducible;
    under DDP each rank sees a different class mix, so a different batch weight w_b)."""
    return TinyLongTailData(COUNTS, batch_size=batch_size, image_size=32, shuffle=False, separable=False)
