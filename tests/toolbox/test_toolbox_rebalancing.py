"""Stage-two classifier re-balancing (cRT, τ-norm, MaxNorm), the cosine head, post-hoc logit adjustment."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from neurogrow.callbacks import (
    ClassifierRetraining,
    MaxNorm,
    PosthocLogitAdjustment,
    TauNormalization,
)
from neurogrow.data.samplers import ClassBalancedSampler
from neurogrow.losses import LDAMLoss
from neurogrow.models.heads import NormedLinear
from tests.conftest import COUNTS, TinyLongTailData, make_module, make_trainer

# The stage-two callbacks only check that a stage-one checkpoint was named (the train entry loads it);
# these tests train stage one in memory instead.
STAGE_ONE = "stage_one.ckpt"


def pre_logits(module, x: torch.Tensor) -> torch.Tensor:
    return module.model.forward_head(module.model.forward_features(x), pre_logits=True)


def test_crt_trains_only_a_reinitialised_classifier_with_frozen_bn() -> None:
    module = make_module()
    before = copy.deepcopy(module.model.state_dict())
    data = TinyLongTailData(sampler=ClassBalancedSampler)
    make_trainer(
        [ClassifierRetraining(STAGE_ONE)], max_epochs=2, limit_train_batches=2, limit_val_batches=1
    ).fit(module, data)
    after = module.model.state_dict()
    classifier_keys = {"fc.weight", "fc.bias"}
    for key, value in before.items():
        if key in classifier_keys:
            assert not torch.equal(value, after[key]), key
        else:  # conv weights and BatchNorm running statistics of the frozen backbone
            assert torch.equal(value, after[key]), key
    assert [n for n, p in module.model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]


def test_tau_norm_evaluates_with_normalised_weights_and_max_epochs_zero(tiny_data) -> None:
    module = make_module()
    stored = module.model.fc.weight.detach().clone()
    trainer = make_trainer([TauNormalization(STAGE_ONE, tau=0.5)], max_epochs=0)
    trainer.fit(module, tiny_data)
    trainer.test(module, tiny_data, verbose=False)
    assert module.test_results["test/acc"] is not None
    x = tiny_data.test_images[:4]
    module.eval()
    with torch.no_grad():
        w = module.model.fc.weight
        expected = F.linear(pre_logits(module, x), w / w.norm(dim=1, keepdim=True).sqrt())
        assert torch.allclose(module.model(x), expected, atol=1e-5)
    assert torch.equal(module.model.fc.weight, stored)  # the weights themselves are untouched
    module.train()
    with torch.no_grad():
        assert torch.allclose(module.model(x), module.model.fc(pre_logits(module, x)), atol=1e-5)


def test_maxnorm_keeps_every_class_weight_inside_the_ball(tiny_data) -> None:
    module = make_module()
    with torch.no_grad():
        module.model.fc.weight.mul_(10)
    data = TinyLongTailData(sampler=ClassBalancedSampler)
    make_trainer(
        [MaxNorm(STAGE_ONE, thresh=0.1, relative=False, interval="step")], max_epochs=1, limit_val_batches=1
    ).fit(module, data)
    norms = module.model.fc.weight.detach().norm(dim=1)
    assert bool((norms <= 0.1 + 1e-6).all())
    assert norms.max().item() == pytest.approx(0.1, abs=1e-4)  # the gradient pushes them to the bound


def test_ldam_trains_on_the_cosine_head(tiny_data) -> None:
    module = make_module(loss=LDAMLoss)
    make_trainer([], max_epochs=1, limit_val_batches=1).fit(module, tiny_data)
    classifier = module.model.get_classifier()
    assert isinstance(classifier, NormedLinear) and classifier.bias is None
    module.eval()
    with torch.no_grad():
        logits = module.model(tiny_data.test_images)
    assert bool((logits.abs() <= 1 + 1e-5).all())


@pytest.mark.parametrize("technique", [ClassifierRetraining, MaxNorm])
def test_stage_two_training_refuses_instance_balanced_sampling(technique, tiny_data) -> None:
    with pytest.raises(ValueError, match=r"class-balanced sampling.*sampler=class_balanced"):
        make_trainer([technique(STAGE_ONE)], max_epochs=1).fit(make_module(), tiny_data)
    # the check can be switched off (e.g. to study cRT with another sampler)
    make_trainer([technique(STAGE_ONE, balanced_sampling=False)], max_epochs=1, limit_train_batches=1).fit(
        make_module(), tiny_data
    )


def test_posthoc_logit_adjustment_only_at_evaluation(tiny_data) -> None:
    module = make_module()
    trainer = make_trainer([PosthocLogitAdjustment(tau=1.5)], max_epochs=1, limit_train_batches=1)
    trainer.fit(module, tiny_data)
    trainer.test(module, tiny_data, verbose=False)
    x = tiny_data.test_images[:4]
    log_prior = torch.log(torch.tensor(COUNTS, dtype=torch.float) / sum(COUNTS))
    module.eval()
    with torch.no_grad():
        raw = module.model.fc(pre_logits(module, x))
        assert torch.allclose(module.model(x), raw - 1.5 * log_prior, atol=1e-5)
        module.train()
        train_out = module.model(x)
    raw_train = module.model.fc(pre_logits(module, x)).detach()
    assert torch.allclose(train_out, raw_train, atol=1e-4)


def test_bad_options_raise() -> None:
    with pytest.raises(ValueError, match="thresh"):
        MaxNorm(STAGE_ONE, thresh=0)
    with pytest.raises(ValueError, match="interval"):
        MaxNorm(STAGE_ONE, interval="batch")
    with pytest.raises(ValueError, match="tau"):
        TauNormalization(STAGE_ONE, tau=-1)
    with pytest.raises(ValueError, match="init_from=outputs/"):
        ClassifierRetraining(init_from=None)
