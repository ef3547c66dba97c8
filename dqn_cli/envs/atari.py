"""The DQN-paper Atari preprocessing (Mnih et al., 2015; Machado et al., 2018), as Gymnasium wrappers.

make the ALE env with frameskip=1 and greyscale screens, then:
  AtariFrames       no-op starts; repeat each action `frame_skip` frames, max-pool the last two
                    (sprites flicker), resize to 84x84 with area interpolation
  FireOnLifeStart   press FIRE after a reset and after a lost life (Breakout waits for it)
  EpisodicLife      training only: a lost life ends the episode for the learner, the game goes on
Reward clipping happens in the training loop (env.reward_clip: 1), so logged scores stay the
game's own; the frame stack (env.frame_stack: 4) is gymnasium's FrameStackObservation.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional, Tuple

import gymnasium as gym
import numpy as np

from dqn_cli.config import AtariConfig

NOOP, FIRE = 0, 1


@lru_cache(maxsize=8)
def area_taps(source: int, target: int) -> Tuple[np.ndarray, np.ndarray]:
    """For each target pixel, the source pixels it covers and their overlap weights (area
    interpolation): (target, taps) indices and weights, weights summing to 1 per target pixel."""
    scale = source / target
    taps = int(np.ceil(scale)) + 1
    indices = np.zeros((target, taps), dtype=np.int64)
    weights = np.zeros((target, taps), dtype=np.float32)
    for t in range(target):
        start, end = t * scale, (t + 1) * scale
        for k, s in enumerate(range(int(start), min(int(np.ceil(end)), source))):
            indices[t, k], weights[t, k] = s, (min(end, s + 1) - max(start, s)) / scale
    return indices, weights


def resize_area(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Greyscale uint8 frame -> (height, width) uint8 by area interpolation, rows then columns.

    Element-wise gathers, not matrix products: BLAS threads cost far more than these few
    multiplications, above all on a busy machine."""
    rows, row_weights = area_taps(frame.shape[0], height)
    cols, col_weights = area_taps(frame.shape[1], width)
    tall = (frame[rows].astype(np.float32) * row_weights[:, :, None]).sum(axis=1)  # (height, source width)
    small = (tall[:, cols] * col_weights).sum(axis=2)  # (height, width)
    return np.rint(small).astype(np.uint8)


class AtariFrames(gym.Wrapper):
    """No-op starts, action repeat with a max over the last two frames, and an 84x84 grey screen."""

    def __init__(self, env: gym.Env, noop_max: int = 30, frame_skip: int = 4, screen_size: int = 84):
        super().__init__(env)
        screen = env.observation_space
        if screen.shape is None or len(screen.shape) != 2:
            raise ValueError(f"AtariFrames wants greyscale (obs_type='grayscale') screens, got {screen.shape}")
        self.noop_max, self.frame_skip, self.screen_size = noop_max, frame_skip, screen_size
        self.observation_space = gym.spaces.Box(0, 255, (screen_size, screen_size), np.uint8)
        self._last_two = np.zeros((2, *screen.shape), dtype=np.uint8)

    def _observe(self) -> np.ndarray:
        return resize_area(self._last_two.max(axis=0), self.screen_size, self.screen_size)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None) -> Tuple[np.ndarray, dict]:
        frame, info = self.env.reset(seed=seed, options=options)
        for _ in range(self.np_random.integers(1, self.noop_max + 1) if self.noop_max else 0):
            frame, _, terminated, truncated, info = self.env.step(NOOP)
            if terminated or truncated:
                frame, info = self.env.reset()
        self._last_two[:] = frame
        return self._observe(), info

    def step(self, action) -> Tuple[np.ndarray, float, bool, bool, dict]:
        total, terminated, truncated, info = 0.0, False, False, {}
        for repeat in range(self.frame_skip):
            frame, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if repeat >= self.frame_skip - 2:
                self._last_two[repeat - (self.frame_skip - 2)] = frame
            if terminated or truncated:
                self._last_two[:] = frame  # the game ended on this frame: no older frame to pool with
                break
        return self._observe(), total, terminated, truncated, info


def lives(env: gym.Env) -> int:
    return int(env.unwrapped.ale.lives())


class FireOnLifeStart(gym.Wrapper):
    """Press FIRE after a reset and whenever a life is lost, for games that stand still until then."""

    def step(self, action) -> Tuple[np.ndarray, float, bool, bool, dict]:
        before = lives(self.env)
        obs, reward, terminated, truncated, info = self.env.step(action)
        if not (terminated or truncated) and lives(self.env) < before:
            obs, fire_reward, terminated, truncated, info = self.env.step(FIRE)
            reward += fire_reward
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs) -> Tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(FIRE)
        if terminated or truncated:
            obs, info = self.env.reset(**kwargs)
        return obs, info


class EpisodicLife(gym.Wrapper):
    """A lost life terminates the learner's episode; the next reset() continues the same game
    from the screen it was on (no hidden step, so no reward goes uncounted).

    The step that loses a life says so in info["life_lost"], so the training loop can keep
    counting one episode (and one score) per game.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.game_over = True
        self.last_obs: Optional[np.ndarray] = None

    def step(self, action) -> Tuple[np.ndarray, float, bool, bool, dict]:
        before = lives(self.env)
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        self.last_obs = obs
        life_lost = not self.game_over and lives(self.env) < before
        return obs, reward, terminated or life_lost, truncated, {**info, "life_lost": life_lost}

    def reset(self, **kwargs) -> Tuple[np.ndarray, dict]:
        if self.game_over or self.last_obs is None:
            return self.env.reset(**kwargs)
        return self.last_obs, {"lives": lives(self.env)}


def wrap_atari(env: gym.Env, cfg: AtariConfig, training: bool, max_episode_steps: Optional[int] = None) -> gym.Env:
    """The preprocessing stack; a time limit counts agent steps per game (ALE's own stops a game
    at 108,000 frames = 27,000 agent steps)."""
    env = AtariFrames(env, cfg.noop_max, cfg.frame_skip, cfg.screen_size)
    if cfg.fire_on_life_start and "FIRE" in env.unwrapped.get_action_meanings():
        env = FireOnLifeStart(env)
    if max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps)
    if training and cfg.episodic_life:
        env = EpisodicLife(env)
    return env


# ALE's own frame skip and sticky actions are turned off: AtariFrames repeats actions itself,
# and the Nature settings have no sticky actions (+env.make_kwargs.repeat_action_probability=0.25 adds them).
ALE_MAKE_KWARGS: dict[str, Any] = {"frameskip": 1, "obs_type": "grayscale", "repeat_action_probability": 0.0}
