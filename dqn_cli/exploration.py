"""Epsilon schedules as pure functions of the env step, and epsilon-greedy action choice."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from dqn_cli.config import (
    ConstantExplorationConfig,
    ExponentialExplorationConfig,
    LinearExplorationConfig,
)

Schedule = Callable[[int], float]


def linear_epsilon(step: int, start: float, end: float, duration: int) -> float:
    """Straight line from `start` at step 0 to `end` at `duration`, flat afterwards."""
    progress = min(step / max(duration, 1), 1.0)
    return start + progress * (end - start)


def exponential_epsilon(step: int, start: float, end: float, decay: float) -> float:
    """`end + (start - end) * exp(-step / decay)` (the PyTorch tutorial's schedule)."""
    return end + (start - end) * math.exp(-step / decay)


def make_schedule(cfg, total_steps: int) -> Schedule:
    """Bind a schedule config to a function step -> epsilon."""
    if isinstance(cfg, LinearExplorationConfig):
        duration = cfg.steps if cfg.steps is not None else int(cfg.fraction * total_steps)
        return lambda step: linear_epsilon(step, cfg.start, cfg.end, duration)
    if isinstance(cfg, ExponentialExplorationConfig):
        return lambda step: exponential_epsilon(step, cfg.start, cfg.end, cfg.decay)
    if isinstance(cfg, ConstantExplorationConfig):
        return lambda step: cfg.epsilon
    raise TypeError(f"unknown exploration config {type(cfg).__name__}")


def epsilon_greedy(greedy_actions: Callable[[], np.ndarray], count: int, epsilon: float,
                   rng: np.random.Generator, n_actions: int) -> np.ndarray:
    """`count` actions: each uniformly random with probability `epsilon`, else greedy. The greedy
    actions (a forward pass) are computed only when at least one is needed."""
    explore = rng.random(count) < epsilon
    exploring = int(np.count_nonzero(explore))  # one reduction: this runs every step
    if exploring == count:
        return rng.integers(0, n_actions, size=count)
    actions = greedy_actions()
    if exploring:
        actions[explore] = rng.integers(0, n_actions, size=exploring)
    return actions
