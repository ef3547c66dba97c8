"""BatchedTrainingEnv: copies of an env with a numpy-vectorised version (CartPole) stepped as one
batch, playing exactly the episodes the plain envs would."""

from __future__ import annotations

from typing import Optional

import gymnasium as gym
import numpy as np

from dqn_cli.config import EnvConfig
from dqn_cli.envs.make import older_versions_meant, import_env_module, make_env


def make_batched_env(cfg: EnvConfig, num_envs: int) -> Optional[gym.vector.VectorEnv]:
    """`num_envs` copies as one numpy-vectorised env where Gymnasium has one (CartPole), else None.

    Such an env steps every copy in one array operation and resets each copy on the step after its
    episode ends (next-step autoreset). Start it with `reset_like_single_envs`.
    """
    if cfg.atari is not None or cfg.frame_stack > 1:
        return None
    import_env_module(cfg.import_module)
    try:
        spec = gym.spec(cfg.id)
    except gym.error.Error:
        return None
    if spec.vector_entry_point is None or spec.additional_wrappers:
        return None
    kwargs = dict(cfg.make_kwargs)
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    try:
        with older_versions_meant():
            envs = gym.make_vec(cfg.id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    except TypeError:  # a make_kwargs entry only the single env takes
        return None
    envs.reset(seed=0)
    state = getattr(envs.unwrapped, "state", None)  # one column per copy, as in CartPoleVectorEnv
    if not isinstance(state, np.ndarray) or state.ndim != 2 or state.shape[1] != num_envs:
        envs.close()
        return None
    return envs


def reset_like_single_envs(envs: gym.vector.VectorEnv, cfg: EnvConfig, seed: int) -> np.ndarray:
    """Start copy i of a numpy-vectorised env where the plain env reset with seed `seed + i`
    starts, so a batch plays exactly the episodes that envs played one at a time would. The start
    states are taken from the plain env itself."""
    single = make_env(cfg)
    observations, states = [], []
    for i in range(envs.num_envs):
        obs, _ = single.reset(seed=seed + i)
        observations.append(obs)
        states.append(np.asarray(single.unwrapped.state, dtype=envs.unwrapped.state.dtype))
    single.close()
    envs.reset(seed=seed)  # clears the step counters and pending resets
    envs.unwrapped.state = np.stack(states, axis=1)
    return np.stack(observations)


class BatchedTrainingEnv(gym.vector.VectorEnv):
    """A numpy-vectorised env (CartPoleVectorEnv) that behaves as make_vector_env's SyncVectorEnv.

    The batch steps every copy at once. A copy whose episode ends is reset in the same step by its
    own plain env (`singles[i]`, which only ever resets), so its next episode starts where a plain
    env with the same seed and history would start it, and the last observation goes to
    info["final_obs"]. The batch's own next-step resets never fire. The plain envs also carry the
    state for checkpoints: `capture_env_states` writes each copy into its plain env first, so a
    checkpoint looks the same whichever of the two vector envs wrote it.
    """

    def __init__(self, batch: gym.vector.VectorEnv, singles: list):
        self.batch, self.envs = batch, singles
        self.num_envs = batch.num_envs
        self.single_observation_space = singles[0].observation_space
        self.single_action_space = singles[0].action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.metadata = {**batch.metadata, "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def reset(self, *, seed=None, options=None):
        seeds = seed if isinstance(seed, (list, tuple)) else [None if seed is None else seed + i
                                                               for i in range(self.num_envs)]
        self.batch.reset(seed=seeds[0])  # clears the step counters and pending resets
        observations = [env.reset(seed=s, options=options)[0] for env, s in zip(self.envs, seeds)]
        self.read_from_singles()
        return np.stack(observations), {}

    def step(self, actions):
        obs, rewards, terminated, truncated, _ = self.batch.step(actions)
        done = terminated | truncated
        info: dict = {}
        if done.any():
            info = {"final_obs": obs.copy(), "_final_obs": done}
            core = self.batch.unwrapped
            for i in np.flatnonzero(done):
                obs[i], _ = self.envs[i].reset()
                core.state[:, i] = self.envs[i].unwrapped.state
                core.steps[i] = 0
            core.prev_done[:] = False
        return obs, rewards.astype(np.float64), terminated, truncated, info

    def write_to_singles(self) -> None:
        """Copy i's simulator state and step count into plain env i (for a checkpoint)."""
        core = self.batch.unwrapped
        for i, env in enumerate(self.envs):
            env.unwrapped.state = core.state[:, i].copy()
            _time_limit(env)._elapsed_steps = int(core.steps[i])

    def read_from_singles(self) -> None:
        """Start every copy where its plain env is (after a reset or a restored checkpoint)."""
        core = self.batch.unwrapped
        core.state = np.stack([np.asarray(env.unwrapped.state, dtype=core.state.dtype) for env in self.envs], axis=1)
        core.steps[:] = [_time_limit(env)._elapsed_steps or 0 for env in self.envs]
        core.prev_done[:] = False

    def close(self, **kwargs) -> None:
        self.batch.close()
        for env in self.envs:
            env.close()
        self.closed = True


def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit:
    layer = env
    while not isinstance(layer, gym.wrappers.TimeLimit):
        layer = layer.env
    return layer
