"""Greedy evaluation: CartPole's 100 episodes as one numpy-vectorised batch, other envs side by side."""

import gymnasium as gym
import numpy as np

from dqn_cli.config import EnvConfig
from dqn_cli.envs import make_batched_env
from dqn_cli.evaluate import evaluate


def balancing_policy(obs: np.ndarray) -> np.ndarray:
    """Push the way the pole falls: holds CartPole for its whole 500 steps from most starts."""
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)


def half_balancing_policy(obs: np.ndarray) -> np.ndarray:
    """Balances only while the cart is left of centre: episodes of very different lengths."""
    return np.where(obs[:, 0] < 0.0, balancing_policy(obs), 0)


def single_env_returns(policy, env_id: str, episodes: int, seed: int) -> tuple:
    """The same episodes played one at a time by the plain env, each started where the batch started."""
    starts = make_batched_env(EnvConfig(id=env_id), episodes)
    starts.reset(seed=seed)
    returns, lengths = [], []
    for i in range(episodes):
        env = gym.make(env_id)
        env.reset(seed=0)
        env.unwrapped.state = starts.unwrapped.state[:, i].copy()
        obs, total, length, done = np.array(env.unwrapped.state, dtype=np.float32), 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(policy(obs[None])[0]))
            total, length, done = total + reward, length + 1, terminated or truncated
        returns.append(total)
        lengths.append(length)
    return np.array(returns), np.array(lengths)


def test_cartpole_is_evaluated_as_one_vectorised_batch():
    assert make_batched_env(EnvConfig(), 100).num_envs == 100
    assert make_batched_env(EnvConfig(id="Acrobot-v1"), 10) is None  # no numpy-vectorised version
    assert make_batched_env(EnvConfig(frame_stack=2), 10) is None  # the batch has no wrappers


def test_batched_episodes_equal_the_plain_env_played_one_by_one():
    """Same starts, same actions: each counted episode is exactly the plain env's, truncation at 500
    included, and the batch's automatic resets after an episode ends are never counted."""
    for policy in (balancing_policy, half_balancing_policy):
        result = evaluate(policy, EnvConfig(), episodes=12, seed=7)
        returns, lengths = single_env_returns(policy, "CartPole-v1", 12, seed=7)
        np.testing.assert_array_equal(result.returns, returns)
        np.testing.assert_array_equal(result.lengths, lengths)
    assert (lengths == 500).any() and (lengths < 500).any()


def test_cartpole_v0_keeps_its_200_step_limit_and_max_episode_steps_is_honoured():
    assert evaluate(balancing_policy, EnvConfig(id="CartPole-v0"), episodes=5, seed=0).returns.max() == 200
    assert evaluate(balancing_policy, EnvConfig(max_episode_steps=50), episodes=5, seed=0).returns.max() == 50


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
