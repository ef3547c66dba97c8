"""Experience replay: storage, uniform and prioritized sampling, n-step returns.

Every replay the loop sees has the same interface: `add` one vector-env step, `sample` a
Batch, and prioritized replay's two hooks, `anneal` and `update_priorities` (no-ops elsewhere).
"""

from __future__ import annotations

import os
from typing import Callable, Dict, Optional, Union

import gymnasium as gym
import torch

from dqn_cli.config import PrioritizedBufferConfig, TrainConfig
from dqn_cli.errors import ConfigError
from dqn_cli.replay.n_step import NStepAccumulator, NStepReplay
from dqn_cli.replay.prioritized import NonFinitePriority, PrioritizedReplayBuffer, SumTree
from dqn_cli.replay.buffer import Batch, ReplayBuffer
from dqn_cli.replay.prefetch import BatchPrefetcher

Replay = Union[ReplayBuffer, NStepReplay]

__all__ = ["Batch", "BatchPrefetcher", "NStepAccumulator", "NStepReplay", "NonFinitePriority", "PrioritizedReplayBuffer", "Replay",
           "REPLAYS", "ReplayBuffer", "SumTree", "build_replay",
           "check_replay_fits_in_memory"]


def check_replay_fits_in_memory(cfg: TrainConfig, obs_space: gym.spaces.Box, device: torch.device) -> None:
    """Refuse, in one line, a buffer.capacity larger than this machine's memory, before allocating it
    (the size per transition is measured on a small replay of the same kind)."""
    capacity = cfg.buffer.capacity
    probe = build_replay(cfg, obs_space, device, capacity=min(capacity, 4096))
    needed = probe.bytes_per_transition * capacity
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > total:
        raise ConfigError(f"buffer.capacity={capacity} needs about {needed / 2**30:,.1f} GiB of memory "
                          f"({probe.bytes_per_transition:,.0f} bytes per transition), but this machine has "
                          f"{total / 2**30:,.1f} GiB; choose a smaller buffer.capacity")


def build_replay(cfg: TrainConfig, obs_space: gym.spaces.Box, device: torch.device,
                 capacity: Optional[int] = None) -> Replay:
    """The replay cfg.buffer describes (seeded by cfg.seed, sized for cfg.env's copies and stacked
    frames), wrapped for n-step returns when buffer.n_step > 1; `capacity` overrides buffer.capacity."""
    buffer, env = cfg.buffer, cfg.env
    shape = (buffer.capacity if capacity is None else capacity, obs_space.shape, obs_space.dtype)
    common = {"seed": cfg.seed, "device": device, "n_step": buffer.n_step, "frame_stack": env.frame_stack,
              "num_envs": env.num_envs}
    replay = REPLAYS[buffer.name](buffer, *shape, **common)
    return NStepReplay(replay, buffer.n_step, cfg.gamma, env.num_envs) if buffer.n_step > 1 else replay


def _prioritized(cfg: PrioritizedBufferConfig, *shape, **common) -> PrioritizedReplayBuffer:
    return PrioritizedReplayBuffer(*shape, **common, alpha=cfg.alpha, beta_start=cfg.beta_start, eps=cfg.eps)


# buffer config name -> replay(cfg, capacity, obs_shape, obs_dtype, seed=, device=, n_step=, frame_stack=,
# num_envs=); docs/extending.md adds one
REPLAYS: Dict[str, Callable[..., ReplayBuffer]] = {
    "uniform": lambda cfg, *shape, **common: ReplayBuffer(*shape, **common),
    "prioritized": _prioritized,
}
