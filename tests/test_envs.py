"""envs/: the training vector env and what the loop makes of a step (transitions.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from dqn_cli.config import EnvConfig
from dqn_cli.envs import make_vector_env, real_next_obs, shape_rewards


def test_reward_scaling_then_clipping():
    rewards = np.array([-300.0, 2.0, 50.0])
    assert np.allclose(shape_rewards(rewards, 0.01, None), [-3.0, 0.02, 0.5])
    assert np.allclose(shape_rewards(rewards, 1.0, 1.0), [-1.0, 1.0, 1.0])
    assert np.allclose(shape_rewards(rewards, 0.1, 1.0), [-1.0, 0.2, 1.0])


def test_vector_env_autoreset_keeps_the_real_final_observation():
    """With gymnasium 1.x SAME_STEP autoreset, the stored next_obs must be the episode's last obs."""
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
