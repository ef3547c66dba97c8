"""Tier 1: the small typed parts, each against a hand-computed answer."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from dqn_cli.agent import DQNAgent
from dqn_cli.replay import Batch, ReplayBuffer
from dqn_cli.config import (
    AdamConfig,
    ConstantExplorationConfig,
    EnvConfig,
    ExponentialExplorationConfig,
    HardTargetConfig,
    LinearExplorationConfig,
    MLPConfig,
    SGDConfig,
    SoftTargetConfig,
)
from dqn_cli.envs import real_next_obs, shape_rewards
from dqn_cli.exploration import exponential_epsilon, linear_epsilon, make_schedule
from dqn_cli.losses import td_loss, td_targets
from dqn_cli.learners.flat import FlatParameters
from dqn_cli.networks import DuelingQNetwork, MLPQNetwork, build_q_network
from dqn_cli.target import hard_update, soft_update
from dqn_cli.loop import crossings


# exploration -----------------------------------------------------------------------------------

def test_linear_epsilon_runs_from_start_to_end_then_stays():
    assert linear_epsilon(0, 1.0, 0.1, 100) == 1.0
    assert linear_epsilon(50, 1.0, 0.1, 100) == pytest.approx(0.55)
    assert linear_epsilon(100, 1.0, 0.1, 100) == pytest.approx(0.1)
    assert linear_epsilon(10_000, 1.0, 0.1, 100) == pytest.approx(0.1)


def test_linear_schedule_uses_fraction_of_total_or_explicit_steps():
    by_fraction = make_schedule(LinearExplorationConfig(start=1.0, end=0.0, fraction=0.5), total_steps=1000)
    assert by_fraction(250) == pytest.approx(0.5)
    by_steps = make_schedule(LinearExplorationConfig(start=1.0, end=0.0, fraction=0.5, steps=100), 1000)
    assert by_steps(50) == pytest.approx(0.5) and by_steps(100) == pytest.approx(0.0)


def test_exponential_and_constant_schedules():
    assert exponential_epsilon(0, 0.9, 0.05, 1000) == pytest.approx(0.9)
    assert exponential_epsilon(1000, 0.9, 0.05, 1000) == pytest.approx(0.05 + 0.85 / math.e)
    schedule = make_schedule(ExponentialExplorationConfig(start=0.9, end=0.05, decay=1000), 10)
    assert schedule(10 ** 6) == pytest.approx(0.05)
    assert make_schedule(ConstantExplorationConfig(epsilon=0.2), 10)(12345) == 0.2


# target updates --------------------------------------------------------------------------------

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
    from dqn_cli.config import SoftTargetConfig
    from dqn_cli.target import update_target

    target, online = (FlatParameters(net).data for net in _two_nets())
    in_a_row, at_once = target.clone(), target.clone()
    for _ in range(16):
        update_target(SoftTargetConfig(tau=0.05), in_a_row, online)
    update_target(SoftTargetConfig(tau=0.05), at_once, online, times=16)
    assert torch.allclose(at_once, in_a_row, rtol=0, atol=1e-6)
    assert not torch.allclose(at_once, online, rtol=0, atol=1e-3)  # 16 steps of 5% are not a copy


def test_crossings_counts_interval_multiples_passed():
    assert crossings(0, 1, 4) == 0
    assert crossings(3, 4, 4) == 1
    assert crossings(3, 12, 4) == 3  # a vector env step of 9 transitions passes 4, 8 and 12


# replay buffer ---------------------------------------------------------------------------------

def test_buffer_wraps_around_and_keeps_the_newest():
    buffer = ReplayBuffer(capacity=5, obs_shape=(2,), obs_dtype=np.float32, seed=0)
    for start in range(0, 8, 2):  # 4 vector steps of 2 envs = 8 transitions into 5 slots
        rows = np.arange(start, start + 2)
        buffer.add(np.stack([rows, rows], 1), rows, rows.astype(float), np.stack([rows, rows], 1) + 1,
                   np.zeros(2, bool), np.zeros(2, bool))
    assert len(buffer) == 5 and buffer.position == 3
    assert sorted(buffer.actions.tolist()) == [3, 4, 5, 6, 7]
    batch = buffer.sample(64)
    assert batch.obs.shape == (64, 2) and batch.actions.dtype == torch.int64
    assert set(batch.actions.tolist()) <= {3, 4, 5, 6, 7}
    assert torch.equal(batch.next_obs[:, 0], batch.obs[:, 0] + 1)  # rows stay aligned


def test_buffer_storage_is_preallocated_and_compact():
    buffer = ReplayBuffer(capacity=1_000_000, obs_shape=(4,), obs_dtype=np.float32, seed=0)
    assert buffer.nbytes <= 64 * 2**20  # a 1M-transition CartPole buffer fits in 64 MB


def test_buffer_sampling_is_seeded():
    def draws(seed):
        buffer = ReplayBuffer(100, (1,), np.float32, seed=seed)
        buffer.store(np.zeros((100, 1)), np.arange(100), np.zeros(100), np.zeros((100, 1)), np.zeros(100))
        return buffer.sample(10).actions.tolist()
    assert draws(1) == draws(1) and draws(1) != draws(2)


# losses ------------------------------------------------------------------------------------------

def test_termination_stops_bootstrapping_and_truncation_does_not():
    rewards = torch.tensor([1.0, 1.0])
    terminated = torch.tensor([1.0, 0.0])  # row 1 was cut by a time limit: stored as not terminated
    next_q = torch.tensor([[3.0, 5.0], [3.0, 5.0]])
    assert torch.allclose(td_targets(rewards, terminated, 0.9, next_q), torch.tensor([1.0, 1.0 + 0.9 * 5.0]))


def test_double_q_lets_online_pick_and_target_value():
    rewards, terminated = torch.zeros(1), torch.zeros(1)
    next_q_target = torch.tensor([[10.0, 1.0]])
    next_q_online = torch.tensor([[0.0, 2.0]])  # online prefers action 1
    assert td_targets(rewards, terminated, 1.0, next_q_target).item() == 10.0
    assert td_targets(rewards, terminated, 1.0, next_q_target, next_q_online).item() == 1.0


def test_huber_and_mse_losses():
    q, target = torch.tensor([0.0, 0.0]), torch.tensor([0.5, 3.0])
    assert td_loss(q, target, "mse").item() == pytest.approx((0.25 + 9.0) / 2)
    assert td_loss(q, target, "huber").item() == pytest.approx((0.5 * 0.25 + (3.0 - 0.5)) / 2)


# networks ----------------------------------------------------------------------------------------

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


# agent -------------------------------------------------------------------------------------------

def _batch():
    torch.manual_seed(1)
    return Batch(obs=torch.randn(8, 4), actions=torch.randint(0, 2, (8,)), rewards=torch.randn(8),
                 next_obs=torch.randn(8, 4), terminated=(torch.rand(8) < 0.3).float())


@pytest.mark.parametrize("fast_learner", [False, True])
@pytest.mark.parametrize("double_q", [False, True])
def test_agent_learn_minimises_the_td_loss_it_names(double_q, fast_learner):
    torch.manual_seed(0)
    agent = DQNAgent(MLPQNetwork(4, 2, [16], "relu"), SGDConfig(lr=0.1), HardTargetConfig(), gamma=0.9,
                     loss="mse", double_q=double_q, device=torch.device("cpu"), fast_learner=fast_learner)
    with torch.no_grad():  # a target net of its own weights, so the two nets disagree on the best action
        agent.target_weights.data.copy_(torch.randn_like(agent.target_weights.data))
    batch = _batch()
    with torch.no_grad():
        next_online, next_target = agent.online(batch.next_obs), agent.target(batch.next_obs)
        assert (next_online.argmax(1) != next_target.argmax(1)).any()  # else double = vanilla
        targets = td_targets(batch.rewards, batch.terminated, 0.9, next_target, next_online if double_q else None)
        other = td_targets(batch.rewards, batch.terminated, 0.9, next_target, None if double_q else next_online)
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
    agent = DQNAgent(MLPQNetwork(4, 2, [16], "relu"), SGDConfig(lr=1.0), HardTargetConfig(), gamma=0.9,
                     loss="mse", double_q=False, device=torch.device("cpu"), max_grad_value=1e-3)
    before = [p.detach().clone() for p in agent.online.parameters()]
    agent.learn(_batch()._replace(rewards=torch.full((8,), 1e4)))
    moved = max((p.detach() - b).abs().max().item() for p, b in zip(agent.online.parameters(), before))
    assert 0 < moved <= 1e-3 * (1 + 1e-5)


def test_gradient_clipping_by_norm_bounds_the_step():
    torch.manual_seed(0)
    agent = DQNAgent(MLPQNetwork(4, 2, [16], "relu"), SGDConfig(lr=1.0), HardTargetConfig(), gamma=0.9,
                     loss="mse", double_q=False, device=torch.device("cpu"), max_grad_norm=0.01)
    before = torch.cat([p.detach().flatten().clone() for p in agent.online.parameters()])
    agent.learn(_batch()._replace(rewards=torch.full((8,), 1e4)))
    after = torch.cat([p.detach().flatten() for p in agent.online.parameters()])
    assert 0 < (after - before).norm().item() <= 0.01 + 1e-6


def test_agent_soft_target_update_uses_tau():
    torch.manual_seed(0)
    agent = DQNAgent(MLPQNetwork(4, 2, [8], "relu"), AdamConfig(), SoftTargetConfig(tau=0.5), gamma=0.9,
                     loss="huber", double_q=False, device=torch.device("cpu"))
    agent.learn(_batch())
    expected = [0.5 * o.detach() + 0.5 * t.detach()
                for t, o in zip(agent.target.parameters(), agent.online.parameters())]
    agent.update_target()
    assert all(torch.allclose(t, e) for t, e in zip(agent.target.parameters(), expected))


def test_act_is_greedy_at_zero_epsilon_and_random_at_one():
    torch.manual_seed(0)
    agent = DQNAgent(MLPQNetwork(4, 3, [8], "relu"), AdamConfig(), HardTargetConfig(), 0.9, "huber",
                     False, torch.device("cpu"))
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    greedy = agent.online(torch.as_tensor(obs)).argmax(1).numpy()
    rng = np.random.default_rng(0)
    assert np.array_equal(agent.act(obs, 0.0, rng, 3), greedy)
    assert not np.array_equal(agent.act(obs, 1.0, rng, 3), greedy)


# environments --------------------------------------------------------------------------------

def test_reward_scaling_then_clipping():
    rewards = np.array([-300.0, 2.0, 50.0])
    assert np.allclose(shape_rewards(rewards, 0.01, None), [-3.0, 0.02, 0.5])
    assert np.allclose(shape_rewards(rewards, 1.0, 1.0), [-1.0, 1.0, 1.0])
    assert np.allclose(shape_rewards(rewards, 0.1, 1.0), [-1.0, 0.2, 1.0])


def test_vector_env_autoreset_keeps_the_real_final_observation():
    """With gymnasium 1.x SAME_STEP autoreset, the stored next_obs must be the episode's last obs."""
    from dqn_cli.envs import make_vector_env

    cfg = EnvConfig(id="CartPole-v1", num_envs=3, max_episode_steps=5)
    envs = make_vector_env(cfg, seed=0)
    single = [gym.make("CartPole-v1", max_episode_steps=5) for _ in range(3)]
    obs, _ = envs.reset(seed=[0, 1, 2])
    single_obs = [env.reset(seed=i)[0] for i, env in enumerate(single)]
    assert np.allclose(obs, np.stack(single_obs))
    for step in range(5):
        actions = np.array([0, 1, 0])
        next_obs, _, terminated, truncated, info = envs.step(actions)
        stepped = [env.step(a) for env, a in zip(single, actions)]
        done = terminated | truncated
        stored = real_next_obs(next_obs, done, info)
        assert np.allclose(stored, np.stack([s[0] for s in stepped]))
        assert np.array_equal(terminated, [s[2] for s in stepped])
        assert np.array_equal(truncated, [s[3] for s in stepped])
        obs = next_obs
    # every env hit the 5-step limit or fell before it; truncated ones are not terminated
    assert done.all() and not (terminated & truncated).any()
    envs.close()


def test_sweep_jobs_spread_over_several_gpus_only():
    from dqn_cli.runtime import job_device

    assert [job_device("cuda", n, 4) for n in range(6)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]
    assert job_device("auto", 5, 4) == "auto:1"  # still auto: a GPU only if the network gains from one
    assert job_device("cuda", 3, 1) == "cuda"  # one GPU (or SLURM's own allocation): keep it
    assert job_device("cpu", 3, 4) == "cpu" and job_device("cuda:2", 0, 4) == "cuda:2"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc: start-up is reported on Linux only")
def test_seconds_since_launch_is_the_time_since_the_process_started():
    """The start-up figure: a process asked right after launch answers at most the time the launcher
    saw pass (plus /proc's 10 ms tick), never a second more."""
    probe = ("import time; from dqn_cli.runtime import seconds_since_launch; "
             "print(seconds_since_launch(), time.clock_gettime(time.CLOCK_BOOTTIME))")
    before = time.clock_gettime(time.CLOCK_BOOTTIME)
    answer, child_now = map(float, subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                                  check=True).stdout.split())
    assert 0 < answer <= child_now - before + 0.02
