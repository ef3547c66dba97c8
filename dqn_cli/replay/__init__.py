"""Experience replay: storage, uniform and prioritized sampling, n-step returns.

Every replay the loop sees has the same interface: `add` one vector-env step, `sample` a
Batch, and prioritized replay's two hooks, `anneal` and `update_priorities` (no-ops elsewhere).
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

from dqn_cli.config import PrioritizedBufferConfig, UniformBufferConfig
from dqn_cli.replay.n_step import NStepAccumulator, NStepReplay
from dqn_cli.replay.prioritized import NonFinitePriority, PrioritizedReplayBuffer, SumTree
from dqn_cli.replay.uniform import Batch, ReplayBuffer

Replay = Union[ReplayBuffer, NStepReplay]

__all__ = ["Batch", "NStepAccumulator", "NStepReplay", "NonFinitePriority", "PrioritizedReplayBuffer", "Replay",
           "ReplayBuffer", "SumTree", "build_replay"]


def build_replay(cfg: UniformBufferConfig, gamma: float, obs_shape: Sequence[int], obs_dtype: np.dtype, seed: int,
                 device: torch.device, frame_stack: int = 1, num_envs: int = 1) -> Replay:
    """The replay a `buffer` config describes, wrapped for n-step returns when buffer.n_step > 1."""
    common = (cfg.capacity, obs_shape, obs_dtype, seed, device, cfg.n_step, frame_stack, num_envs)
    if isinstance(cfg, PrioritizedBufferConfig):
        replay = PrioritizedReplayBuffer(*common, cfg.alpha, cfg.beta_start, cfg.eps)
    else:
        replay = ReplayBuffer(*common)
    return NStepReplay(replay, cfg.n_step, gamma, num_envs) if cfg.n_step > 1 else replay
