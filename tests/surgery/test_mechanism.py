"""The mechanism beside the callback, without a Trainer: schedule, selection policies, the event edit."""

from __future__ import annotations

import functools
import math

import pytest
import timm
import torch

import neurogrow  # noqa: F401  (registers the CIFAR ResNets)
from neurogrow.surgery import NeuronGroup, SurgeryConfig, find_neuron_groups
from neurogrow.surgery.apply import apply_decisions
from neurogrow.surgery.config import Schedule
from neurogrow.surgery.schedule import accumulates, event_epochs, is_event_epoch, next_event_epoch
from neurogrow.surgery.scores import scored_paths
from neurogrow.surgery.selection import Decision, decide, grow, num_modified, paired, phase, prune

PAPER = Schedule(start_epoch=29, interval=30, num_events=4)


def test_schedule_matches_the_paper() -> None:
    assert [e for e in range(150) if is_event_epoch(PAPER, e)] == [29, 59, 89, 119]
    assert event_epochs(PAPER, 150) == [29, 59, 89, 119] and event_epochs(PAPER, 29) == []
    assert [e for e in range(150) if accumulates(PAPER, e)] == [29, 59, 89, 119]
    two = Schedule(start_epoch=29, interval=30, num_events=2, accumulate_epochs=2)
    assert [e for e in range(150) if accumulates(two, e)] == [28, 29, 58, 59]
    assert next_event_epoch(two, 60) is None and next_event_epoch(two, 30) == 59
    endless = Schedule(start_epoch=0, interval=5, num_events=None)
    assert event_epochs(endless, 21) == [0, 5, 10, 15, 20]


def test_paired_splits_the_best_into_the_slots_of_the_worst() -> None:
    scores = torch.tensor([0.5, 3.0, 0.1, 2.0, 1.0, 0.2, 0.3, 0.4, 0.6, 0.7])
    d = paired(scores, 0.2)
    assert d.sources.tolist() == [1, 3] and d.targets.tolist() == [2, 5]
    assert torch.equal(d.targets, d.removed)
    assert num_modified(10, 0.1) == 1 and num_modified(30, 0.1) == 3 and num_modified(3, 0.5) == 1


def test_grow_fills_dormant_slots_and_prune_empties_the_worst_active() -> None:
    scores = torch.tensor([5.0, 0.0, 1.0, 4.0, 0.0, 2.0, 3.0, 0.5])
    dormant = torch.tensor([False, True, False, False, True, False, False, False])
    g = grow(scores, dormant, 0.25)  # k = 2 dormant slots, filled by the two best active neurons
    assert g.sources.tolist() == [0, 3] and g.targets.tolist() == [1, 4] and g.removed.numel() == 0
    p = prune(scores, dormant, 0.25)
    assert p.removed.tolist() == [7, 2] and p.sources.numel() == p.targets.numel() == 0
    assert [phase("grow_prune", i) for i in range(4)] == ["grow", "prune", "grow", "prune"]
    assert phase("paired", 1) == "paired"
    assert decide({"g": scores}, 0.25, "grow", {"g": dormant})["g"].targets.tolist() == [1, 4]
    with pytest.raises(ValueError, match="dormant-slot masks"):
        decide({"g": scores}, 0.25, "prune")


@functools.cache
def _groups() -> tuple[NeuronGroup, ...]:
    return tuple(find_neuron_groups(_model(), torch.zeros(2, 3, 32, 32), verify=False).groups)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = timm.create_model("resnet20_cifar", num_classes=4, widths=(8, 16, 16))
    with torch.no_grad():  # distinct gammas, so copies and draws are told apart
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
    return model


def _edit(
    **options,
) -> tuple[NeuronGroup, dict[str, torch.Tensor], dict[str, torch.Tensor], torch.optim.Optimizer]:
    """One event on the first group (sources 0, 1 -> slots 6, 7): (group, before, after, optimizer)."""
    model = _model()
    group = _groups()[0]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cfg = SurgeryConfig.build(**options)
    src, tgt = torch.tensor([0, 1]), torch.tensor([6, 7])
    decision = {group.name: Decision(src, tgt, tgt)}
    apply_decisions(model, [group], decision, cfg, [opt], torch.Generator().manual_seed(0))
    return group, before, dict(model.state_dict()), opt


def _at(
    state: dict[str, torch.Tensor], group: NeuronGroup, role: str, units: list[int]
) -> list[torch.Tensor]:
    return [state[s.path].index_select(s.dim, s.indices[units]) for s in group.slices if s.role == role]


def test_weight_scaling_shares_the_consumer_weights_by_keep_fraction() -> None:
    group, before, after, _ = _edit(ws={"keep_fraction": 0.3})
    for orig, src, new in zip(
        _at(before, group, "in", [0, 1]), _at(after, group, "in", [0, 1]), _at(after, group, "in", [6, 7])
    ):
        torch.testing.assert_close(src, 0.3 * orig)
        torch.testing.assert_close(new, 0.7 * orig)


def test_without_weight_scaling_the_copy_gets_the_full_consumer_weights() -> None:
    group, before, after, _ = _edit(ws={"enabled": False})
    for orig, src, new in zip(
        _at(before, group, "in", [0, 1]), _at(after, group, "in", [0, 1]), _at(after, group, "in", [6, 7])
    ):
        assert torch.equal(src, orig) and torch.equal(new, orig)


def test_sqrt_weight_scaling_leaves_both_halves_at_one_over_sqrt2() -> None:
    group, before, after, _ = _edit(ws={"mode": "sqrt"})
    for orig, src, new in zip(
        _at(before, group, "in", [0, 1]), _at(after, group, "in", [0, 1]), _at(after, group, "in", [6, 7])
    ):
        torch.testing.assert_close(src, orig * math.sqrt(0.5))
        torch.testing.assert_close(new, orig * math.sqrt(0.5))


def test_without_gda_new_neurons_are_identical_to_their_sources() -> None:
    group, _, after, _ = _edit(gda={"enabled": False})
    for role in ("out", "channel", "stat"):
        for src, new in zip(_at(after, group, role, [0, 1]), _at(after, group, role, [6, 7])):
            assert torch.equal(src, new), role


def test_gda_draws_new_norm_parameters_around_their_init_values() -> None:
    group, _, after, _ = _edit(gda={"noise": 0.01})
    gamma = next(s.path for s in group.slices if s.role == "channel" and s.path.endswith("weight"))
    src, new = after[gamma][[0, 1]], after[gamma][[6, 7]]
    assert not torch.allclose(src, new)  # sources' gammas were drawn in [0.5, 1.5]
    assert bool(((new - 1.0).abs() < 0.1).all())  # around gamma = 1
    running_var = next(s.path for s in group.slices if s.role == "stat" and s.path.endswith("running_var"))
    assert after[running_var][[6, 7]].tolist() == [1.0, 1.0]  # statistics reset


def test_the_event_repairs_the_optimizer_state_of_new_rows() -> None:
    group, _, after, opt = _edit()
    out = next(s for s in group.slices if s.role == "out")
    (param,) = [p for p in opt.param_groups[0]["params"] if p.data_ptr() == after[out.path].data_ptr()]
    buf = opt.state[param]["momentum_buffer"]
    assert buf.index_select(out.dim, out.indices[[6, 7]]).abs().sum() == 0  # new rows: no momentum
    assert buf.index_select(out.dim, out.indices[[2, 3]]).abs().sum() > 0  # untouched rows keep theirs


def test_scoring_roles_decide_which_slices_are_scored() -> None:
    params = dict(_model().named_parameters())
    groups = list(_groups())
    out_only = scored_paths(groups, params, ["out"])
    assert all(p.endswith("conv1.weight") for p in out_only)
    assert set(out_only) < set(scored_paths(groups, params, ["out", "channel"]))
    with pytest.raises(ValueError, match=r"no parameter with a role in scoring\.roles"):
        scored_paths(groups, params, ["qk"])
