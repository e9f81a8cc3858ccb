import pytest
import timm
import torch

import neurogrow.models  # noqa: F401  (registers the CIFAR ResNets with timm)
from neurogrow.models.backbone import UnknownBackboneError, create_backbone


def test_resnet32_cifar_is_a_registered_timm_model_with_the_standard_shape():
    model = timm.create_model("resnet32_cifar", num_classes=10)
    assert sum(p.numel() for p in model.parameters()) == 464_154  # 0.46M, as in LDAM-DRW's resnet32
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 + 3 * 5 * 2  # stem + 3 stages x 5 blocks x 2 convs, option-A shortcuts
    assert [
        model.layer1[0].conv1.out_channels,
        model.layer2[0].conv1.out_channels,
        model.layer3[0].conv1.out_channels,
    ] == [16, 32, 64]
    x = torch.randn(2, 3, 32, 32)
    feats = model.forward_features(x)
    assert feats.shape == (2, 64, 8, 8)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 64)
    assert model(x).shape == (2, 10)
    model.reset_classifier(7)
    assert model.get_classifier().out_features == 7


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("resnet18", {}),
        ("vgg11_bn", {}),
        ("convformer_s18", {}),
        ("mambaout_femto", {}),
        ("vit_tiny_patch16_224", {"depth": 1}),
    ],
)
def test_small_input_keeps_spatial_resolution_for_32px(name, kwargs):
    model = create_backbone(name, 10, small_input=True, **kwargs).eval()
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 10)
    feats = model.forward_features(x)
    # A 224-px stem would leave 1x1 (or fewer tokens); the adapted ones keep >= 4x4 positions.
    positions = feats.shape[1] - 1 if feats.ndim == 3 else feats.shape[-2] * feats.shape[-1]
    if name == "mambaout_femto":  # channels-last features
        positions = feats.shape[1] * feats.shape[2]
    assert positions >= 16 or name == "vgg11_bn"


def test_small_input_resnet_stem_is_3x3_stride_1_without_maxpool():
    model = create_backbone("resnet18", 10, small_input=True)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)


def test_unknown_backbone_suggests_close_timm_names():
    with pytest.raises(UnknownBackboneError, match=r"Did you mean.*resnet34"):
        create_backbone("resnet33", 10)


def test_small_input_on_unsupported_family_says_what_to_do():
    with pytest.raises(ValueError, match="small_input is not supported"):
        create_backbone("efficientnet_b0", 10, small_input=True)
