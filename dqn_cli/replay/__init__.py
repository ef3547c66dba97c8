"""Experience replay: storage, uniform and prioritized sampling, n-step returns.

Every replay the loop sees has the same interface: `add` one vector-env step, `sample` a
Batch, and prioritized replay's two hooks, `anneal` and `update_priorities` (no-ops elsewhere).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Sequence, Union

import numpy as np
import torch

from dqn_cli.config import PrioritizedBufferConfig, UniformBufferConfig
from dqn_cli.errors import ConfigError
from dqn_cli.replay.n_step import NStepAccumulator, NStepReplay
from dqn_cli.replay.prioritized import NonFinitePriority, PrioritizedReplayBuffer, SumTree
from dqn_cli.replay.uniform import Batch, ReplayBuffer

Replay = Union[ReplayBuffer, NStepReplay]

__all__ = ["Batch", "NStepAccumulator", "NStepReplay", "NonFinitePriority", "PrioritizedReplayBuffer", "Replay",
           "ReplayBuffer", "SumTree", "build_replay",
           "check_replay_fits_in_memory"]


def check_replay_fits_in_memory(cfg: UniformBufferConfig, *args) -> None:
    """Refuse, in one line, a buffer.capacity larger than this machine's memory, before allocating it
    (build_replay's arguments; the size per transition is measured on a small replay of the same kind)."""
    probe = build_replay(replace(cfg, capacity=min(cfg.capacity, 4096)), *args)
    needed = probe.bytes_per_transition * cfg.capacity
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > total:
        raise ConfigError(f"buffer.capacity={cfg.capacity} needs about {needed / 2**30:,.1f} GiB of memory "
                          f"({probe.bytes_per_transition:,.0f} bytes per transition), but this machine has "
                          f"{total / 2**30:,.1f} GiB; choose a smaller buffer.capacity")


def build_replay(cfg: UniformBufferConfig, gamma: float, obs_shape: Sequence[int], obs_dtype: np.dtype, seed: int,
                 device: torch.device, frame_stack: int = 1, num_envs: int = 1) -> Replay:
    """The replay a `buffer` config describes, wrapped for n-step returns when buffer.n_step > 1."""
    common = (cfg.capacity, obs_shape, obs_dtype, seed, device, cfg.n_step, frame_stack, num_envs)
    if isinstance(cfg, PrioritizedBufferConfig):
        replay = PrioritizedReplayBuffer(*common, cfg.alpha, cfg.beta_start, cfg.eps)
    else:
        replay = ReplayBuffer(*common)
    return NStepReplay(replay, cfg.n_step, gamma, num_envs) if cfg.n_step > 1 else replay
