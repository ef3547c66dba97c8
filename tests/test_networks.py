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


def test_a_huge_vector_observation_warns_about_the_mlp_it_makes(caplog):
    from dqn_cli.config import AutoNetworkConfig
    from dqn_cli.networks import LARGE_MLP

    with caplog.at_level("WARNING", logger="dqn_cli"):
        build_q_network(AutoNetworkConfig(hidden_sizes=[8]), (100,), np.float32, 2)
        assert not caplog.records
        values = LARGE_MLP // 8 + 1  # one more input than fits under the limit with 8 hidden units
        build_q_network(AutoNetworkConfig(hidden_sizes=[8]), (values,), np.float32, 2)
    (record,) = caplog.records
    assert f"({values:,} values, not an image it can convolve) make an MLP of" in record.getMessage()
