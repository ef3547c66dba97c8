"""networks.py: the Q-networks' forward passes and what build_q_network builds."""

from __future__ import annotations

import numpy as np
import torch

from dqn_cli.config import MLPConfig
from dqn_cli.networks import DuelingQNetwork, build_q_network


def test_dueling_head_subtracts_mean_advantage():
    torch.manual_seed(0)
    net = DuelingQNetwork(4, 3, [16], "tanh")
    obs = torch.randn(5, 4)
    features = net.torso(obs)
    value, advantage = net.heads.value(features), net.heads.advantage(features)
    assert torch.allclose(net(obs), value + advantage - advantage.mean(1, keepdim=True))
    assert torch.allclose(net(obs).mean(1, keepdim=True), value, atol=1e-6)


def test_build_q_network_shapes():
    net = build_q_network(MLPConfig(hidden_sizes=[32, 16], activation="elu"), (6,), np.float32, n_actions=4)
    assert net(torch.zeros(7, 6)).shape == (7, 4)
