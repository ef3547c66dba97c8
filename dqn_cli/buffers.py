"""Replay storage in preallocated tensors: no Python object per transition."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch


class Batch(NamedTuple):
    obs: torch.Tensor  # (B, *obs_shape) float32
    actions: torch.Tensor  # (B,) int64
    rewards: torch.Tensor  # (B,) float32, already scaled/clipped for training
    next_obs: torch.Tensor  # (B, *obs_shape) float32
    terminated: torch.Tensor  # (B,) float32: 1 stops bootstrapping, truncation stays 0


class ReplayBuffer:
    """Uniform replay over a ring of `capacity` transitions.

    Transitions arrive a vector-env step at a time (one per env) and are written with one
    slice assignment; sampling draws indices with replacement from a seeded generator.
    """

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: np.dtype, seed: int,
                 device: torch.device = torch.device("cpu")):
        self.capacity = capacity
        self.device = device
        torch_dtype = torch.from_numpy(np.zeros(0, dtype=obs_dtype)).dtype
        self.obs = torch.zeros((capacity, *obs_shape), dtype=torch_dtype)
        self.next_obs = torch.zeros((capacity, *obs_shape), dtype=torch_dtype)
        self.actions = torch.zeros(capacity, dtype=torch.int64)
        self.rewards = torch.zeros(capacity, dtype=torch.float32)
        self.terminated = torch.zeros(capacity, dtype=torch.float32)
        self.position = 0  # next slot to write
        self.size = 0
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def nbytes(self) -> int:
        tensors = (self.obs, self.next_obs, self.actions, self.rewards, self.terminated)
        return sum(t.numel() * t.element_size() for t in tensors)

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray) -> None:
        """Store one transition per row (a vector env's step)."""
        n = len(actions)
        slots = (self.position + torch.arange(n)) % self.capacity
        self.obs[slots] = torch.as_tensor(obs, dtype=self.obs.dtype)
        self.next_obs[slots] = torch.as_tensor(next_obs, dtype=self.obs.dtype)
        self.actions[slots] = torch.as_tensor(actions, dtype=torch.int64)
        self.rewards[slots] = torch.as_tensor(rewards, dtype=torch.float32)
        self.terminated[slots] = torch.as_tensor(terminated, dtype=torch.float32)
        self.position = (self.position + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """Uniformly random stored transitions, moved to `device` in one transfer per field."""
        idx = torch.randint(0, self.size, (batch_size,), generator=self.generator)
        to = lambda t: t[idx].to(self.device, non_blocking=True)  # noqa: E731
        return Batch(to(self.obs).float(), to(self.actions), to(self.rewards), to(self.next_obs).float(),
                     to(self.terminated))
