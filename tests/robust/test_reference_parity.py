"""Techniques against their reference code (classifier-balancing, LTR-weight-balancing, LDAM-DRW).

The reference functions below are copied from the upstream repositories (only the model attribute paths
adapted), so the comparison is with the real code, not with a re-derivation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import compose_config

COUNTS = torch.tensor([400, 100, 25, 4])
LABELS = torch.repeat_interleave(torch.arange(4), COUNTS)


def test_progressive_sampler_from_the_config_ends_class_balanced(tmp_path: Path) -> None:
    # classifier-balancing, data/ClassPrioritySampler.py: lams = np.linspace(0, 1, epochs);
    # weights = balanced * lam + (1 - lam) * uniform, lam = lams[clip(epoch, 0, epochs - 1)]
    epochs = 4
    cfg = compose_config("sampler=progressive", f"trainer.max_epochs={epochs}", output_dir=tmp_path)
    sampler = instantiate(cfg.sampler)(labels=LABELS)
    instance = COUNTS.double() / COUNTS.sum()
    for epoch, lam in enumerate(np.linspace(0, 1, epochs)):
        expected = lam * torch.full((4,), 0.25, dtype=torch.double) + (1 - lam) * instance
        assert sampler.class_probabilities(epoch).tolist() == pytest.approx(expected.tolist(), abs=1e-12)
    assert sampler.class_probabilities(epochs - 1).tolist() == pytest.approx([0.25] * 4)


class MaxNorm_via_PGD:
    def __init__(self, thresh=1.0, LpNorm=2, tau=1):
        self.thresh = thresh
        self.LpNorm = LpNorm
        self.tau = tau
        self.perLayerThresh = []

    def setPerLayerThresh(self, model):
        self.perLayerThresh = []
        for curLayer in [model.fc.weight, model.fc.bias]:
            curparam = curLayer.data
            if len(curparam.shape) <= 1:
                self.perLayerThresh.append(float("inf"))
                continue
            curparam_vec = curparam.reshape((curparam.shape[0], -1))
            neuronNorm_curparam = (
                torch.linalg.norm(curparam_vec, ord=self.LpNorm, dim=1).detach().unsqueeze(-1)
            )
            curLayerThresh = neuronNorm_curparam.min() + self.thresh * (
                neuronNorm_curparam.max() - neuronNorm_curparam.min()
            )
            self.perLayerThresh.append(curLayerThresh)

    def PGD(self, model):
        if len(self.perLayerThresh) == 0:
            self.setPerLayerThresh(model)
        for i, curLayer in enumerate([model.fc.weight, model.fc.bias]):
            curparam = curLayer.data
            curparam_vec = curparam.reshape((curparam.shape[0], -1))
            neuronNorm_curparam = (
                (torch.linalg.norm(curparam_vec, ord=self.LpNorm, dim=1) ** self.tau).detach().unsqueeze(-1)
            )
            scalingVect = torch.ones_like(curparam)
            curLayerThresh = self.perLayerThresh[i]
            idx = neuronNorm_curparam > curLayerThresh
            idx = idx.squeeze()
            tmp = curLayerThresh / (neuronNorm_curparam[idx].squeeze()) ** (self.tau)
            for _ in range(len(scalingVect.shape) - 1):
                tmp = tmp.unsqueeze(-1)
            scalingVect[idx] = torch.mul(scalingVect[idx], tmp)
            curparam[idx] = scalingVect[idx] * curparam[idx]


def test_maxnorm_from_the_config_matches_the_reference_pgd(tmp_path: Path) -> None:
    """Relative radius from the stage-one classifier; projection once, at the end of each epoch."""
    import copy

    from lightning.pytorch.callbacks import Callback

    from tests.conftest import TinyLongTailData, make_module, make_trainer

    cfg = compose_config("decoupling=maxnorm", "init_from=stage_one.ckpt", output_dir=tmp_path)
    # the tiny datamodule has no class-balanced sampler; the sampler check is tested in tests/toolbox
    maxnorm = instantiate(cfg.callbacks.decoupling, balanced_sampling=False)
    module = make_module()
    with torch.no_grad():  # a spread of class norms, as a stage-one classifier has
        module.model.fc.weight.mul_(torch.linspace(1, 8, 4).view(-1, 1))
    reference = MaxNorm_via_PGD(thresh=0.1)
    reference.setPerLayerThresh(copy.deepcopy(module.model))

    class Record(Callback):  # runs before MaxNorm's epoch-end hook (callback order)
        def __init__(self) -> None:
            self.before: list[torch.nn.Module] = []
            self.after_steps: list[torch.Tensor] = []

        def on_train_batch_end(self, trainer, pl_module, *args) -> None:
            self.after_steps.append(pl_module.model.fc.weight.detach().norm(dim=1).max())

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.before.append(copy.deepcopy(pl_module.model))

    record = Record()
    make_trainer([record, maxnorm], max_epochs=2, limit_val_batches=0).fit(module, TinyLongTailData())
    assert maxnorm.radius == pytest.approx(float(reference.perLayerThresh[0]), rel=1e-6)
    # no projection after the steps inside an epoch: the largest class vector stays above the radius
    assert all(float(m) > maxnorm.radius for m in record.after_steps[:3])
    # the projection of the last epoch, compared with the reference PGD on the same weights
    expected = record.before[-1]
    reference.PGD(expected)
    assert torch.allclose(module.model.fc.weight, expected.fc.weight, rtol=1e-6, atol=0)
    assert torch.equal(module.model.fc.bias, expected.fc.bias)


def test_normed_linear_starts_as_ldam_drw() -> None:
    """LDAM-DRW models/resnet_cifar.py: weight [in, out] uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)."""
    from neurogrow.models.heads import use_normed_head
    from tests.conftest import make_module

    module = make_module()
    torch.manual_seed(1)
    use_normed_head(module.model)
    ours = module.model.get_classifier().weight.detach()
    torch.manual_seed(0)
    reference = torch.Tensor(ours.shape[1], ours.shape[0])  # LDAM's layout: [in_features, out_features]
    reference.data.uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)
    assert ours.norm(dim=1).tolist() == pytest.approx(reference.norm(dim=0).tolist(), abs=1e-6)
    assert ours.norm(dim=1).tolist() == pytest.approx([1.0] * ours.shape[0], abs=1e-6)
    # same draw, same layout transform: identical values
    torch.manual_seed(0)
    raw = torch.empty_like(ours).uniform_(-1, 1)
    torch.manual_seed(0)
    module.model.get_classifier().reset_parameters()
    assert torch.equal(module.model.get_classifier().weight.detach(), raw.renorm(2, 0, 1e-5).mul(1e5))
