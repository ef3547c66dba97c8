"""agent.py: DQNAgent acts epsilon-greedily, learns the update it names, clips, and follows with its target."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import agent_config
from dqn_cli.agent import DQNAgent
from dqn_cli.config import AdamConfig, SGDConfig, SoftTargetConfig
from dqn_cli.networks import MLPQNetwork
from dqn_cli.replay import Batch

CPU = torch.device("cpu")


def _batch():
    torch.manual_seed(1)
    return Batch(obs=torch.randn(8, 4), actions=torch.randint(0, 2, (8,)), rewards=torch.randn(8),
                 next_obs=torch.randn(8, 4), terminated=(torch.rand(8) < 0.3).float())


@pytest.mark.parametrize("fast_learner", [False, True])
@pytest.mark.parametrize("double_q", [False, True])
def test_agent_learn_minimises_the_td_loss_it_names(double_q, fast_learner):
    torch.manual_seed(0)
    agent = DQNAgent(MLPQNetwork(4, 2, [16], "relu"), agent_config(loss="mse", double_q=double_q), CPU,
                     fast_learner=fast_learner)
    with torch.no_grad():  # a target net of its own weights, so the two nets disagree on the best action
        agent.target_weights.data.copy_(torch.randn_like(agent.target_weights.data))
    batch = _batch()
    with torch.no_grad():
        next_online, next_target = agent.online(batch.next_obs), agent.target(batch.next_obs)
        assert (next_online.argmax(1) != next_target.argmax(1)).any()  # else double = vanilla
        picked = next_online if double_q else next_target  # the net that picks a'
        other_pick = next_target if double_q else next_online
        targets = batch.rewards + 0.9 * (1 - batch.terminated) * next_target.gather(1, picked.argmax(1, keepdim=True))[:, 0]
        other = batch.rewards + 0.9 * (1 - batch.terminated) * next_target.gather(1, other_pick.argmax(1, keepdim=True))[:, 0]
        assert not torch.allclose(targets, other)
        q_taken = agent.online(batch.obs).gather(1, batch.actions[:, None]).squeeze(1)
        expected = ((q_taken - targets) ** 2).mean()
    result = agent.learn(batch)
    assert torch.allclose(result.targets, targets)
    loss = result.loss
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss_after = agent.learn(batch).loss
    assert loss_after.item() < loss.item()  # SGD on a fixed batch goes downhill


def test_gradient_clipping_by_value_bounds_the_step():
    torch.manual_seed(0)
    agent = DQNAgent(MLPQNetwork(4, 2, [16], "relu"), agent_config(optimizer=SGDConfig(lr=1.0, max_grad_value=1e-3),
                                                                   loss="mse"), CPU)
    before = [p.detach().clone() for p in agent.online.parameters()]
    agent.learn(_batch()._replace(rewards=torch.full((8,), 1e4)))
    moved = max((p.detach() - b).abs().max().item() for p, b in zip(agent.online.parameters(), before))
    assert 0 < moved <= 1e-3 * (1 + 1e-5)


def test_gradient_clipping_by_norm_bounds_the_step():
    torch.manual_seed(0)
    agent = DQNAgent(MLPQNetwork(4, 2, [16], "relu"), agent_config(optimizer=SGDConfig(lr=1.0, max_grad_norm=0.01),
                                                                   loss="mse"), CPU)
    before = torch.cat([p.detach().flatten().clone() for p in agent.online.parameters()])
    agent.learn(_batch()._replace(rewards=torch.full((8,), 1e4)))
    after = torch.cat([p.detach().flatten() for p in agent.online.parameters()])
    assert 0 < (after - before).norm().item() <= 0.01 + 1e-6


def test_agent_soft_target_update_uses_tau():
    torch.manual_seed(0)
    agent = DQNAgent(MLPQNetwork(4, 2, [8], "relu"), agent_config(optimizer=AdamConfig(), target=SoftTargetConfig(tau=0.1)),
                     CPU)
    agent.learn(_batch())
    expected = [0.1 * o.detach() + 0.9 * t.detach()
                for t, o in zip(agent.target.parameters(), agent.online.parameters())]
    agent.update_target()
    assert all(torch.allclose(t, e) for t, e in zip(agent.target.parameters(), expected))


def test_act_is_greedy_at_zero_epsilon_and_random_at_one():
    torch.manual_seed(0)
    agent = DQNAgent(MLPQNetwork(4, 3, [8], "relu"), agent_config(optimizer=AdamConfig()), CPU)
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    greedy = agent.online(torch.as_tensor(obs)).argmax(1).numpy()
    rng = np.random.default_rng(0)
    assert np.array_equal(agent.act(obs, 0.0, rng, 3), greedy)
    assert not np.array_equal(agent.act(obs, 1.0, rng, 3), greedy)
