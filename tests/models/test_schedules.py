import math

import pytest
import torch

from neurogrow.models.schedules import WarmupCosine, WarmupMultiStep, per_step_scheduler


def test_multistep_matches_ldam_drw_recipe():
    schedule = WarmupMultiStep(max_epochs=200, warmup_epochs=5, milestones=[160, 180], gamma=0.01)
    assert schedule(0) == 0.0
    assert schedule(2.5) == pytest.approx(0.5)
    assert schedule(100) == 1.0
    assert schedule(160) == pytest.approx(0.01)
    assert schedule(199) == pytest.approx(1e-4)


def test_cosine_reaches_min_at_max_epochs():
    schedule = WarmupCosine(max_epochs=10, warmup_epochs=0, min_lr_ratio=0.1)
    assert schedule(0) == pytest.approx(1.0)
    assert schedule(5) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert schedule(10) == pytest.approx(0.1)


def test_per_step_scheduler_steps_fractional_epochs_and_resumes_from_state():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = per_step_scheduler(opt, WarmupCosine(max_epochs=4, warmup_epochs=1), steps_per_epoch=10)
    for _ in range(5):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)  # half-way through the warm-up epoch
    state = sched.state_dict()
    opt2 = torch.optim.SGD([param], lr=1.0)
    sched2 = per_step_scheduler(opt2, WarmupCosine(max_epochs=4, warmup_epochs=1), steps_per_epoch=10)
    sched2.load_state_dict(state)
    opt.step(), sched.step()
    opt2.step(), sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
