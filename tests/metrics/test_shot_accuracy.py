import torch

from neurogrow.metrics import LongTailAccuracy, shot_groups


def test_shot_groups_follow_classifier_balancing_thresholds():
    groups = shot_groups([500, 101, 100, 20, 19, 1])
    assert groups["many"].tolist() == [True, True, False, False, False, False]
    assert groups["medium"].tolist() == [False, False, True, True, False, False]
    assert groups["few"].tolist() == [False, False, False, False, True, True]


def _onehot(preds, num_classes):
    return torch.nn.functional.one_hot(torch.tensor(preds), num_classes).float()


def test_many_medium_few_on_hand_made_predictions():
    counts = [1000, 50, 5]  # one class per group
    metric = LongTailAccuracy(counts)
    # class 0: 4/4 right; class 1: 1/2 right; class 2: 0/2 right
    target = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    preds = [0, 0, 0, 0, 1, 0, 0, 1]
    metric.update(_onehot(preds, 3), target)
    out = metric.compute()
    assert torch.isclose(out["acc"], torch.tensor(5 / 8))
    assert torch.allclose(out["per_class"], torch.tensor([1.0, 0.5, 0.0]))
    assert torch.isclose(out["balanced_acc"], torch.tensor(0.5))
    assert torch.isclose(out["acc_many"], torch.tensor(1.0))
    assert torch.isclose(out["acc_medium"], torch.tensor(0.5))
    assert torch.isclose(out["acc_few"], torch.tensor(0.0))


def test_empty_group_is_absent_not_zero_or_nan():
    # CIFAR-10-LT IF=100 has no class under 20 images: no Few group.
    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    metric = LongTailAccuracy(counts)
    target = torch.arange(10).repeat(3)
    metric.update(_onehot(target.tolist(), 10), target)
    out = metric.compute()
    assert "acc_few" not in out
    assert torch.isclose(out["acc_many"], torch.tensor(1.0))
    assert torch.isclose(out["acc_medium"], torch.tensor(1.0))


def test_group_accuracy_is_mean_over_classes_not_over_samples():
    counts = [200, 150]  # both Many
    metric = LongTailAccuracy(counts)
    target = torch.tensor([0] * 9 + [1])
    metric.update(_onehot([0] * 9 + [0], 2), target)  # class 0 all right, class 1 all wrong
    out = metric.compute()
    assert torch.isclose(out["acc"], torch.tensor(0.9))
    assert torch.isclose(out["acc_many"], torch.tensor(0.5))


def test_states_accumulate_over_updates_and_reset():
    metric = LongTailAccuracy([300, 30])
    metric.update(_onehot([0], 2), torch.tensor([0]))
    metric.update(_onehot([0], 2), torch.tensor([1]))
    assert torch.isclose(metric.compute()["acc"], torch.tensor(0.5))
    metric.reset()
    metric.update(_onehot([1], 2), torch.tensor([1]))
    assert torch.isclose(metric.compute()["acc"], torch.tensor(1.0))
