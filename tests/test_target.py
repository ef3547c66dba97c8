"""target.py: hard and polyak (soft) target-network updates on flat weights."""

from __future__ import annotations

import torch

from dqn_cli.config import HardTargetConfig, SoftTargetConfig
from dqn_cli.learners.flat import FlatParameters
from dqn_cli.networks import MLPQNetwork
from dqn_cli.target import hard_update, soft_update, update_target


def _two_nets():
    torch.manual_seed(0)
    return MLPQNetwork(4, 2, [8], "relu"), MLPQNetwork(4, 2, [8], "relu")


def test_hard_update_copies_every_weight_without_aliasing():
    target, online = (FlatParameters(net) for net in _two_nets())
    hard_update(target.data, online.data)
    assert torch.equal(target.data, online.data) and target.data.data_ptr() != online.data.data_ptr()


def test_soft_update_is_polyak_average():
    target_net, online_net = _two_nets()
    expected = [0.25 * o.detach() + 0.75 * t.detach() for t, o in zip(target_net.parameters(), online_net.parameters())]
    target, online = FlatParameters(target_net), FlatParameters(online_net)
    soft_update(target.data, online.data, tau=0.25)
    for t, e in zip(target_net.parameters(), expected):  # the module's own parameters moved
        assert torch.allclose(t, e)


def test_several_soft_updates_at_once_equal_that_many_in_a_row():
    target, online = (FlatParameters(net).data for net in _two_nets())
    in_a_row, at_once = target.clone(), target.clone()
    for _ in range(16):
        update_target(SoftTargetConfig(tau=0.05), in_a_row, online)
    update_target(SoftTargetConfig(tau=0.05), at_once, online, times=16)
    assert torch.allclose(at_once, in_a_row, rtol=0, atol=1e-6)
    assert not torch.allclose(at_once, online, rtol=0, atol=1e-3)  # 16 steps of 5% are not a copy


def test_soft_update_moves_the_target_a_tau_share_toward_the_online_weights():
    """tau = 0.1 is far from symmetric: tau and 1 - tau swapped would move the target 90% of the way."""
    target, online = torch.zeros(3), torch.tensor([10.0, -20.0, 5.0])
    update_target(SoftTargetConfig(tau=0.1), target, online)
    assert torch.allclose(target, torch.tensor([1.0, -2.0, 0.5]))
    hard = torch.zeros(3)
    update_target(HardTargetConfig(), hard, online, times=3)
    assert torch.equal(hard, online)
