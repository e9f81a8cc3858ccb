"""Long-tailed class counts and the LDAM-DRW subsampling, as pure functions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from neurogrow.data.profiles import balanced_holdout, long_tail_counts, subsample_long_tail


def test_cifar10_if100_exp_counts_are_the_papers():
    counts = long_tail_counts(5000, 10, 100, "exp")
    assert counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert sum(counts) == 12406


# Totals quoted throughout the CIFAR-LT literature (e.g. LDAM-DRW, BBN, RIDE).
@pytest.mark.parametrize(
    ("img_max", "num_classes", "imb_factor", "total"),
    [
        (5000, 10, 10, 20431),
        (5000, 10, 50, 13996),
        (500, 100, 100, 10847),
        (500, 100, 10, 19573),
        (500, 100, 50, 12608),
    ],
)
def test_exp_totals_match_literature(img_max, num_classes, imb_factor, total):
    assert sum(long_tail_counts(img_max, num_classes, imb_factor, "exp")) == total


@pytest.mark.parametrize(("img_max", "num_classes"), [(5000, 10), (500, 100)])
@pytest.mark.parametrize("imb_factor", [10, 100])
@pytest.mark.parametrize("imb_type", ["exp", "step"])
def test_counts_follow_formula(img_max, num_classes, imb_factor, imb_type):
    counts = long_tail_counts(img_max, num_classes, imb_factor, imb_type)
    if imb_type == "exp":
        expected = [int(img_max * (1 / imb_factor) ** (i / (num_classes - 1))) for i in range(num_classes)]
    else:
        half = num_classes // 2
        expected = [img_max] * half + [int(img_max / imb_factor)] * (num_classes - half)
    assert counts == expected
    assert counts[0] == img_max and counts[-1] == int(img_max / imb_factor)
    assert all(a >= b for a, b in itertools.pairwise(counts))


def test_imbalance_factor_one_is_balanced():
    assert long_tail_counts(500, 100, 1, "exp") == [500] * 100
    assert long_tail_counts(5000, 10, 1, "step") == [5000] * 10


@pytest.mark.parametrize(("imb_factor", "imb_type", "match"), [(0.5, "exp", ">= 1"), (100, "linear", "exp")])
def test_bad_imbalance_settings_raise_clear_errors(imb_factor, imb_type, match):
    with pytest.raises(ValueError, match=match):
        long_tail_counts(5000, 10, imb_factor, imb_type)


def test_subsampling_reproduces_ldam_drw_on_interleaved_labels(ldam_reference):
    rng = np.random.default_rng(1)
    labels = rng.permutation(np.repeat(np.arange(10), 50))  # official files interleave the classes
    counts = long_tail_counts(50, 10, 10, "exp")
    for seed in (0, 3):
        ours = subsample_long_tail(labels, counts, seed=seed)
        ref = ldam_reference(labels.tolist(), counts, seed=seed)
        np.testing.assert_array_equal(ours, ref)
        assert np.bincount(labels[ours], minlength=10).tolist() == counts


def test_subsampling_leaves_global_numpy_rng_alone():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    subsample_long_tail(np.repeat(np.arange(3), 5), [5, 3, 1], seed=0)
    assert np.random.rand() == expected


def test_subsampling_rejects_profile_larger_than_class():
    with pytest.raises(ValueError, match="class 1 has 5 images"):
        subsample_long_tail(np.repeat(np.arange(2), 5), [5, 6])


def test_balanced_holdout_takes_k_per_class_and_keeps_the_rest():
    labels = np.repeat(np.arange(3), [10, 6, 4])
    keep, hold = balanced_holdout(labels, 3, 3)
    assert np.bincount(labels[hold]).tolist() == [3, 3, 3]
    assert np.bincount(labels[keep]).tolist() == [7, 3, 1]
    assert sorted(np.concatenate([keep, hold]).tolist()) == list(range(20))
    with pytest.raises(ValueError, match="val_per_class=4 but class 2 has only 4"):
        balanced_holdout(labels, 4, 3)
