"""algorithms/dqn.py, the loop itself: counters, epsilon's clock and stored transitions do what the
settings' names say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config
from dqn_cli.agent import DQNAgent
from dqn_cli.config import EnvConfig, HardTargetConfig, LinearExplorationConfig, TrainConfig
from dqn_cli.exploration import linear_epsilon
from dqn_cli.replay import ReplayBuffer
from dqn_cli.run.train import train


def expected_event_count(cfg: TrainConfig, interval: int) -> int:
    """Loop ticks at step = n, 2n, ... (n = num_envs); count ticks from learning_starts on
    that pass a multiple of `interval` -- written out step by step, independently of `crossings`."""
    count, n = 0, cfg.env.num_envs
    for after in range(n, cfg.total_steps + n, n):
        if after >= cfg.learning_starts:
            count += sum(1 for s in range(after - n + 1, after + 1) if s % interval == 0)
    return count


@pytest.mark.parametrize("num_envs, target_interval", [(1, 7), (3, 7), (3, 2)])
def test_learning_starts_train_freq_gradient_steps_and_target_interval(tmp_path: Path, monkeypatch, num_envs,
                                                                       target_interval):
    """With 3 envs and a target every 2 steps, some steps pass two target intervals: both count."""
    cfg = tiny_config(env=EnvConfig(id="CountingEnv-v0", num_envs=num_envs),
                      target=HardTargetConfig(interval=target_interval))
    target_updates = []
    monkeypatch.setattr(DQNAgent, "update_target", lambda self, times=1: target_updates.append(times))
    summary = train(cfg, tmp_path)
    assert summary["updates"] == expected_event_count(cfg, cfg.train_freq) * cfg.gradient_steps
    assert sum(target_updates) == expected_event_count(cfg, cfg.target.interval)
    assert summary["steps"] >= cfg.total_steps


def test_no_update_before_learning_starts(tmp_path: Path):
    summary = train(tiny_config(learning_starts=1000, total_steps=60), tmp_path)
    assert summary["updates"] == 0


def test_stored_transitions_bootstrap_through_truncation_only(tmp_path: Path, monkeypatch):
    stored = []
    original_add = ReplayBuffer.add

    def spy(self, obs, actions, rewards, next_obs, terminated, truncated):
        stored.append((np.array(obs), np.array(actions), np.array(rewards), np.array(next_obs),
                       np.array(terminated)))
        original_add(self, obs, actions, rewards, next_obs, terminated, truncated)

    monkeypatch.setattr(ReplayBuffer, "add", spy)
    cfg = tiny_config(env=EnvConfig(id="CountingEnv-v0", num_envs=3, reward_scale=0.5, reward_clip=0.4),
                      total_steps=300)
    train(cfg, tmp_path)
    obs, actions, rewards, next_obs, terminated = (np.concatenate(x) for x in zip(*stored))
    # next_obs is the state the env really reached, also at episode ends (never the reset state)
    assert np.array_equal(next_obs[:, 0], obs[:, 0] + 1)
    ended_by_termination = (obs[:, 0] == 2) & (actions == 1)
    ended_by_time_limit = next_obs[:, 0] == 4
    assert ended_by_termination.any() and ended_by_time_limit.any()
    assert np.array_equal(terminated.astype(bool), ended_by_termination)
    assert not terminated[ended_by_time_limit].any()
    assert np.allclose(rewards, 0.4)  # 1.0 scaled by 0.5, clipped to 0.4


def test_subnormal_floats_count_as_zero_while_training_only(tmp_path: Path, monkeypatch):
    """Decayed optimizer statistics would otherwise fall into the CPU's slow subnormal range."""
    import torch

    seen = []
    original_learn = DQNAgent.learn
    monkeypatch.setattr(DQNAgent, "learn",
                        lambda self, batch: (seen.append(float(torch.tensor(1e-39) * 1.0)), original_learn(self, batch))[1])
    train(tiny_config(), tmp_path)
    assert seen and set(seen) == {0.0}
    assert float(torch.tensor(1e-39) * 1.0) > 0.0  # the process gets its default back


def test_epsilon_follows_env_steps_not_gradient_updates(tmp_path: Path, monkeypatch):
    """exploration.unit=step: epsilon at each act is the schedule at that env step. With train_freq=3
    and gradient_steps=2 the update count runs at 2/3 of the step count, so the clocks differ."""
    seen = []
    original_act = DQNAgent.act
    monkeypatch.setattr(DQNAgent, "act", lambda self, obs, epsilon, rng, n: (seen.append(epsilon),
                                                                                original_act(self, obs, epsilon, rng, n))[1])
    cfg = tiny_config(exploration=LinearExplorationConfig(start=1.0, end=0.0, steps=100), total_steps=80)
    train(cfg, tmp_path)
    steps = range(cfg.learning_starts, cfg.total_steps)  # one env: acts at steps 20, 21, ..., 79
    assert seen == pytest.approx([linear_epsilon(step, 1.0, 0.0, 100) for step in steps])
