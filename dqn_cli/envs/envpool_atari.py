"""env.backend=envpool: the Atari training envs stepped by EnvPool (C++ threads, both cores), as the
same kind of vector env the training loops get from Gymnasium.

EnvPool runs the DQN-paper preprocessing itself: no-op starts, action repeat with a max over the last
two frames, greyscale, an 84x84 area resize and the frame stack. Its settings are taken from env.atari,
env.frame_stack and env.max_episode_steps; rewards come back unclipped, so env.reward_clip clips them
in the loop as with Gymnasium, and scores stay the game's own. Evaluation still plays the Gymnasium
env (atari.py), so scores are measured the same way whichever backend trained.

Where it is not the Gymnasium stack (docs/atari.md lists the same):
- after a lost life (episodic life) EnvPool's reset plays no-ops and FIRE before the next step
  and drops their rewards; the Gymnasium stack goes on from the screen the life was lost on;
- no-op starts draw 1..noop_max steps, the FIRE press counting as one of them;
- a new life keeps the frame stack going; Gymnasium's stack restarts from the current screen;
- the resize is OpenCV's INTER_AREA, so a pixel may differ by one grey level;
- a checkpoint cannot hold the emulators' states: a resumed run starts new games.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict

import gymnasium as gym
import numpy as np

from dqn_cli.config import EnvConfig
from dqn_cli.errors import ConfigError

def envpool_task(env_id: str) -> str:
    """ALE/Pong-v5 -> Pong-v5, EnvPool's name for the same game."""
    return env_id.split("/", 1)[1] if env_id.startswith("ALE/") else env_id


def envpool_settings(cfg: EnvConfig, training: bool) -> Dict[str, Any]:
    """EnvPool's keyword arguments for the preprocessing `cfg` describes."""
    atari = cfg.atari  # EnvConfig checked that EnvPool can play these settings
    settings = {"stack_num": cfg.frame_stack, "frame_skip": atari.frame_skip, "noop_max": atari.noop_max,
                "img_height": atari.screen_size, "img_width": atari.screen_size, "gray_scale": True,
                "episodic_life": training and atari.episodic_life, "use_fire_reset": atari.fire_on_life_start,
                "reward_clip": False, "repeat_action_probability": 0.0, **cfg.make_kwargs}
    if cfg.max_episode_steps is not None:
        settings["max_episode_steps"] = cfg.max_episode_steps
    return settings


def import_envpool():
    try:
        return importlib.import_module("envpool")
    except ImportError as error:
        raise ConfigError(f"env.backend=envpool needs EnvPool ({error}); pip install \"dqn-cli[envpool]\" "
                          "(Linux, x86-64 or aarch64), or use env.backend=gymnasium") from None


class EnvPoolAtari(gym.vector.VectorEnv):
    """EnvPool's Atari envs with Gymnasium's same-step autoreset, as make_vector_env's other envs.

    EnvPool resets an env on the step after its episode ends. Here an ended env is reset at once
    (EnvPool resets a subset of its envs on request), its last observation goes to info["final_obs"],
    and a lost life that does not end the game is marked in info["final_info"]["life_lost"], as
    atari.py's EpisodicLife marks it. Seeds are fixed when the pool is made (env i: seed + i).
    """

    def __init__(self, cfg: EnvConfig, seed: int):
        envpool = import_envpool()
        task = envpool_task(cfg.id)
        if task not in envpool.list_all_envs():
            raise ConfigError(f"env.id={cfg.id!r}: EnvPool has no {task}; use env.backend=gymnasium")
        self.pool = envpool.make(task, env_type="gymnasium", num_envs=cfg.num_envs, batch_size=cfg.num_envs,
                                 seed=seed, **envpool_settings(cfg, training=True))
        self.num_envs, self.env_ids = cfg.num_envs, np.arange(cfg.num_envs)
        # One frame comes as a stack of one; the Gymnasium stack (and so evaluation) has no stack axis then.
        self.unstack = cfg.frame_stack == 1
        shape = self.pool.observation_space.shape[1:] if self.unstack else self.pool.observation_space.shape
        self.single_observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.single_action_space = gym.spaces.Discrete(int(self.pool.action_space.n))
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def reset(self, *, seed=None, options=None):
        """New games in every env (the seeds were fixed when the pool was made)."""
        obs, _ = self.pool.reset()
        return self._frames(obs), {}

    def _frames(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, 0] if self.unstack else obs

    def step(self, actions):
        obs, rewards, terminated, truncated, info = self.pool.step(np.asarray(actions, dtype=np.int32))
        if not np.array_equal(info["env_id"], self.env_ids):  # rows in env order, whatever order they came in
            order = np.argsort(info["env_id"])
            obs, rewards, terminated, truncated = obs[order], rewards[order], terminated[order], truncated[order]
            info = {key: value[order] for key, value in info.items()}
        obs, terminated, truncated = self._frames(obs), terminated.astype(bool), truncated.astype(bool)
        done = terminated | truncated
        step_info: dict = {}
        if done.any():
            ended = np.flatnonzero(done)
            life_lost = terminated & ~info["terminated"].astype(bool)
            step_info = {"final_obs": obs.copy(), "_final_obs": done,
                         "final_info": {"life_lost": life_lost, "_life_lost": done}}
            obs = obs.copy()
            first, reset_info = self.pool.reset(ended)
            obs[reset_info["env_id"]] = self._frames(first)
        return obs, rewards.astype(np.float64), terminated, truncated, step_info

    def close(self, **kwargs) -> None:
        self.pool.close()
        self.closed = True
