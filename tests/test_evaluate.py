"""Greedy evaluation: CartPole's 100 episodes as one numpy-vectorised batch, other envs side by side."""

import numpy as np
import pytest

from dqn_cli.config import EnvConfig
from dqn_cli.envs import make_batched_env
from dqn_cli.evaluate import evaluate


def balancing_policy(obs: np.ndarray) -> np.ndarray:
    """Push the way the pole falls: holds CartPole for its whole 500 steps from most starts."""
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)


def half_balancing_policy(obs: np.ndarray) -> np.ndarray:
    """Balances only while the cart is left of centre: episodes of very different lengths."""
    return np.where(obs[:, 0] < 0.0, balancing_policy(obs), 0)


def test_cartpole_is_evaluated_as_one_vectorised_batch():
    assert make_batched_env(EnvConfig(), 100).num_envs == 100
    assert make_batched_env(EnvConfig(id="Acrobot-v1"), 10) is None  # no numpy-vectorised version
    assert make_batched_env(EnvConfig(frame_stack=2), 10) is None  # the batch has no wrappers


@pytest.mark.parametrize("env_cfg", [EnvConfig(), EnvConfig(id="CartPole-v0"), EnvConfig(max_episode_steps=120)])
def test_the_batch_plays_exactly_the_episodes_single_envs_play(env_cfg):
    """Episode i starts where the plain env reset with seed + i starts and runs the same physics,
    truncation included; the batch's automatic resets after an episode ends are never counted."""
    for policy in (balancing_policy, half_balancing_policy):
        batched = evaluate(policy, env_cfg, episodes=24, seed=7)
        one_by_one = evaluate(policy, env_cfg, episodes=24, seed=7, max_parallel=1, batched=False)
        np.testing.assert_array_equal(batched.returns, one_by_one.returns)
        np.testing.assert_array_equal(batched.lengths, one_by_one.lengths)
    limit = env_cfg.max_episode_steps or (200 if env_cfg.id == "CartPole-v0" else 500)
    assert (batched.lengths == limit).any() and (batched.lengths < limit).any()


def test_evaluation_is_reproducible_per_seed():
    first = evaluate(half_balancing_policy, EnvConfig(), episodes=20, seed=3)
    again = evaluate(half_balancing_policy, EnvConfig(), episodes=20, seed=3)
    other = evaluate(half_balancing_policy, EnvConfig(), episodes=20, seed=4)
    np.testing.assert_array_equal(first.returns, again.returns)
    assert not np.array_equal(first.returns, other.returns)


def test_side_by_side_evaluation_does_not_depend_on_how_many_envs_step_together():
    def policy(obs):
        return (obs[:, 4] > 0).astype(np.int64)  # Acrobot: torque by the sign of one joint's velocity

    envs = EnvConfig(id="Acrobot-v1", max_episode_steps=60)
    one = evaluate(policy, envs, episodes=5, seed=11, max_parallel=1)
    five = evaluate(policy, envs, episodes=5, seed=11, max_parallel=5)
    np.testing.assert_array_equal(one.returns, five.returns)


def test_a_stopped_batched_evaluation_returns_only_the_episodes_that_ended():
    steps = []

    def stop_after_60_steps():
        steps.append(1)
        return len(steps) > 60

    result = evaluate(half_balancing_policy, EnvConfig(), episodes=12, seed=7, stop=stop_after_60_steps)
    assert not result.complete
    assert 0 < len(result.returns) < 12 and (result.lengths <= 60).all()
