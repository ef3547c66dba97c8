"""What the loop makes of a vector step: the real next observations, which episodes ended a game,
and the training rewards."""

from __future__ import annotations

from typing import Optional

import numpy as np


def real_next_obs(next_obs: np.ndarray, done: np.ndarray, info: dict) -> np.ndarray:
    """The observation each env actually reached, also for envs whose episode just ended."""
    if not done.any():
        return next_obs
    fixed = next_obs.copy()
    for i in np.flatnonzero(done):
        fixed[i] = info["final_obs"][i]
    return fixed


def game_over(done: np.ndarray, info: dict) -> np.ndarray:
    """Which ended episodes end a whole game: with Atari's episodic life a lost life ends the
    learner's episode, but the score and the episode count go on until the game is over."""
    final = info.get("final_info", {})
    if "life_lost" not in final:
        return done
    return done & ~(final["life_lost"] & final["_life_lost"])


def shape_rewards(rewards: np.ndarray, scale: float, clip: Optional[float]) -> np.ndarray:
    """Training rewards: scaled, then clipped to [-clip, clip] if a clip is set."""
    shaped = rewards.astype(np.float32) * scale
    if clip is not None:
        np.clip(shaped, -clip, clip, out=shaped)
    return shaped
