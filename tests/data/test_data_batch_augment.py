"""Batched crop + flip + normalise on uint8 tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import functional as TF

from neurogrow.data.batch_augment import CIFAR10_MEAN, CIFAR10_STD, BatchAugment


def _images(n: int = 64, h: int = 32, w: int = 32) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randint(1, 256, (n, h, w, 3), dtype=torch.uint8)  # no zeros: padding is recognisable


def test_eval_transform_is_torchvision_normalize():
    x = _images(8)
    ours = BatchAugment()(x, train=False)
    ref = TF.normalize(x.permute(0, 3, 1, 2).float() / 255.0, CIFAR10_MEAN, CIFAR10_STD)
    assert ours.dtype == torch.float32 and ours.shape == (8, 3, 32, 32) and ours.is_contiguous()
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_every_training_sample_is_a_padded_window_possibly_mirrored():
    x = _images(128, 32, 24)  # non-square catches swapped axes
    torch.manual_seed(1)
    out = BatchAugment(padding=4).crop_flip(x)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    padded = F.pad(x, (0, 0, 4, 4, 4, 4))
    offsets, flips = set(), 0
    for i in range(len(x)):
        match = None
        for dy in range(9):
            for dx in range(9):
                window = padded[i, dy : dy + 32, dx : dx + 24]
                if torch.equal(out[i], window):
                    match = (dy, dx, False)
                elif torch.equal(out[i], window.flip(1)):
                    match = (dy, dx, True)
        assert match is not None, f"sample {i} is not a crop of its padded image"
        offsets.add(match[:2])
        flips += match[2]
    assert len(offsets) > 20  # the offsets really vary
    assert 30 < flips < 98  # about half are mirrored


def test_no_padding_and_no_flip_is_identity_and_layouts_agree():
    x = _images(4)
    aug = BatchAugment(padding=0, flip_prob=0.0)
    assert torch.equal(aug.crop_flip(x), x)
    nchw = BatchAugment(padding=0, flip_prob=0.0, channels_last=False)
    torch.testing.assert_close(nchw(x.permute(0, 3, 1, 2)), aug(x))


def test_augmentation_is_reproducible_with_its_seed_and_saved_state():
    x = _images(16)
    aug = BatchAugment(seed=5)
    first = aug(x)
    state = aug.generator_state()
    second = aug(x)
    assert not torch.equal(first, second)  # the generator moves on
    assert torch.equal(BatchAugment(seed=5)(x), first)
    resumed = BatchAugment(seed=5)
    resumed.load_generator_state(state)
    assert torch.equal(resumed(x), second)  # a resumed run continues the same stream


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="padding"):
        BatchAugment(padding=-1)
    with pytest.raises(ValueError, match="4-D"):
        BatchAugment()(torch.zeros(3, 32, 32, dtype=torch.uint8))
