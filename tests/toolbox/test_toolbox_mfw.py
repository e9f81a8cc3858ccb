"""Major Feature Weakening: minority samples untouched, major ones mixed, labels never changed."""

from __future__ import annotations

import pytest
import timm
import torch
from lightning.pytorch.callbacks import Callback
from timm.models.metaformer import MetaFormer, SepConv

import neurogrow.models  # noqa: F401  (registers the CIFAR ResNets with timm)
from neurogrow.callbacks import MajorFeatureWeakening
from neurogrow.callbacks.feature_weakening import weakening_probabilities
from tests.conftest import COUNTS, make_module, make_trainer


def test_probabilities_grow_with_class_size_and_vanish_for_the_smallest() -> None:
    p = weakening_probabilities([100, 10, 1, 55], p_max=0.8, gamma=1.0)
    assert p.tolist() == pytest.approx([0.8, 0.8 * 9 / 99, 0.0, 0.8 * 54 / 99])
    assert weakening_probabilities([5, 5], p_max=1.0, gamma=1.0).tolist() == [0.0, 0.0]


def test_weaken_mixes_major_features_only() -> None:
    torch.manual_seed(0)
    mfw = MajorFeatureWeakening(alpha=0.5, p_max=1.0, gamma=1.0)
    mfw.set_class_counts([100, 10, 1])
    features = torch.randn(64, 5)
    labels = torch.randint(0, 3, (64,))
    labels_before = labels.clone()
    out = mfw.weaken(features, labels)
    assert torch.equal(labels, labels_before)
    minority, major = labels == 2, labels == 0
    assert torch.equal(out[minority], features[minority])
    changed = ~torch.isclose(out, features).all(1)
    assert changed[major].float().mean() > 0.9  # p=1 for the largest class (a partner may be itself)
    # every weakened feature is lam*f_n + (1-lam)*f_j with some partner j and lam in [0.5, 1]
    for n in torch.nonzero(changed).flatten().tolist():
        diff = features[n] - features  # out_n - f_j = lam (f_n - f_j)
        lam = ((out[n] - features) * diff).sum(1) / diff.pow(2).sum(1).clamp_min(1e-12)
        on_segment = torch.isclose(lam[:, None] * diff + features, out[n].expand_as(features), atol=1e-5).all(
            1
        )
        assert bool((on_segment & (lam >= 0.5 - 1e-6) & (lam <= 1 + 1e-6)).any())


def test_lam_min_bounds_the_mixing() -> None:
    torch.manual_seed(1)
    mfw = MajorFeatureWeakening(alpha=1.0, lam_min=0.9)
    mfw.set_class_counts([10, 1])
    features = torch.zeros(32, 1)
    features[::2] = 1.0  # pairs (1, 0): a mixed class-0 "1" becomes lam in [0.9, 1]
    out = mfw.weaken(features, torch.zeros(32, dtype=torch.long))
    assert bool((out[::2] >= 0.9 - 1e-6).all())


TINY_METAFORMER = {"depths": (1, 1, 1, 1), "dims": (8, 16, 24, 32), "num_classes": 3}


@pytest.mark.parametrize(
    "make",
    [
        lambda: timm.create_model("resnet20_cifar", num_classes=3),
        lambda: timm.create_model("resnet10t", num_classes=3),
        lambda: timm.create_model("vit_tiny_patch16_224", num_classes=3, img_size=32, patch_size=8, depth=1),
        lambda: MetaFormer(use_mlp_head=False, **TINY_METAFORMER),  # PoolFormer-style, linear head
        lambda: MetaFormer(
            token_mixers=SepConv, use_mlp_head=True, **TINY_METAFORMER
        ),  # ConvFormer, MLP head
    ],
    ids=["cifar_resnet", "resnet", "vit", "poolformer", "convformer"],
)
def test_classifier_input_is_the_pre_logit_feature(make) -> None:
    torch.manual_seed(0)
    model = make().eval()
    seen = []
    model.get_classifier().register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        model(x)
        pre_logits = model.forward_head(model.forward_features(x), pre_logits=True)
    assert torch.allclose(seen[0], pre_logits)


class RecordLogitsAndLabels(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.labels = batch[1].clone()
        self.batch = batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        assert torch.equal(batch[1], self.labels)  # labels never changed


@pytest.mark.parametrize("layer", [None, "layer2"])
def test_mfw_in_a_trainer_changes_only_major_training_forwards(tiny_data, layer) -> None:
    module = make_module()
    mfw = MajorFeatureWeakening(p_max=1.0, gamma=1.0, layer=layer)
    trainer = make_trainer(
        [mfw, RecordLogitsAndLabels()], max_epochs=1, limit_train_batches=2, limit_val_batches=1
    )
    trainer.fit(module, tiny_data)
    assert mfw._handle is None  # hooks removed after fit
    # re-attach by hand to compare hooked and plain forwards on one batch
    mfw._attach(module)
    x = tiny_data.train_images[:16]
    y = tiny_data.train_labels[:16].clone()
    y[-4:] = 3  # the smallest class (2 samples) -> p = 0
    x[-4:] = tiny_data.train_images[-2:].repeat(2, 1, 1, 1)
    module.model.eval()  # BN in eval so the hook is the only difference
    with torch.no_grad():
        plain = module.model(x)
        mfw._target.training = True  # only the hooked module's flag, which MFW reads; BN stays in eval
        mfw._labels = y
        weakened = module.model(x)
        mfw._target.training = False
        mfw._labels = y
        evaluated = module.model(x)  # not training: untouched
    assert torch.allclose(evaluated, plain)
    assert torch.allclose(weakened[-4:], plain[-4:], atol=1e-6)  # smallest class untouched
    assert not torch.allclose(weakened[y == 0], plain[y == 0])  # largest class weakened
    assert COUNTS[3] == min(COUNTS)


def test_unknown_layer_gives_a_clear_error(tiny_data) -> None:
    with pytest.raises(ValueError, match="layer 'nope' not found"):
        make_trainer([MajorFeatureWeakening(layer="nope")], max_epochs=1).fit(make_module(), tiny_data)
