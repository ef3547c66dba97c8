"""Replay storage in preallocated arrays: no Python object per transition."""

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

    Storage is numpy (a slice write per vector-env step, a fancy-index gather per batch, both
    without per-sample Python); batches become tensors without a copy on the CPU and with one
    host-to-device transfer per field on a GPU.
    """

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: np.dtype, seed: int,
                 device: torch.device = torch.device("cpu")):
        self.capacity = capacity
        self.device = device
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.position = 0  # next slot to write
        self.size = 0
        self.rng = np.random.default_rng(seed)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.obs, self.next_obs, self.actions, self.rewards, self.terminated))

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray) -> None:
        """Store one transition per row (a vector env's step)."""
        n = len(actions)
        end = self.position + n
        slots = slice(self.position, end) if end <= self.capacity else np.arange(self.position, end) % self.capacity
        self.obs[slots] = obs
        self.next_obs[slots] = next_obs
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.terminated[slots] = terminated
        self.position = end % self.capacity
        self.size = min(self.size + n, self.capacity)

    _FIELDS = ("obs", "next_obs", "actions", "rewards", "terminated")

    def state(self) -> dict:
        """The stored transitions (filled slots only) and the ring position, as plain arrays."""
        return {**{name: getattr(self, name)[:self.size] for name in self._FIELDS},
                "position": np.array(self.position), "capacity": np.array(self.capacity)}

    def load_state(self, state: dict) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"saved replay holds capacity {int(state['capacity'])}, this one {self.capacity}")
        self.size = len(state["actions"])
        for name in self._FIELDS:
            getattr(self, name)[:self.size] = state[name]
        self.position = int(state["position"])

    def sample(self, batch_size: int) -> Batch:
        """Uniformly random stored transitions (with replacement)."""
        idx = self.rng.integers(0, self.size, size=batch_size)
        to = lambda array: torch.from_numpy(array[idx]).to(self.device, non_blocking=True)  # noqa: E731
        return Batch(to(self.obs).float(), to(self.actions), to(self.rewards), to(self.next_obs).float(),
                     to(self.terminated))
