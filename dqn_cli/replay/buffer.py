"""Uniform replay over a ring of preallocated arrays: no Python object per transition."""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Protocol, Sequence

import numpy as np
import torch

from dqn_cli.replay.shared import shared_copy
from dqn_cli.replay.storage import FrameStackObservations, PackedBoolObservations, StoredObservations


class Batch(NamedTuple):
    obs: torch.Tensor  # (B, *obs_shape) float32
    actions: torch.Tensor  # (B,) int64
    rewards: torch.Tensor  # (B,) float32, already scaled/clipped for training
    next_obs: torch.Tensor  # (B, *obs_shape) float32
    terminated: torch.Tensor  # (B,) float32: 1 stops bootstrapping, truncation stays 0
    discounts: Optional[torch.Tensor] = None  # (B,) gamma^k of each n-step transition (k rewards summed)
    weights: Optional[torch.Tensor] = None  # (B,) importance-sampling weights (prioritized replay)
    indices: Optional[np.ndarray] = None  # (B,) slots sampled (to update their priorities)
    targets: Optional[torch.Tensor] = None  # (B,) TD targets computed ahead (prefetch=true), else the learner's
    prepared_obs: Optional[torch.Tensor] = None  # obs as the online network's first layer takes them, made ahead


class HasTDErrors(Protocol):
    """What prioritized replay needs back from an update (a learner's LearnResult)."""

    @property
    def td_errors(self) -> torch.Tensor: ...


class ReplayBuffer:
    """Uniform replay over a ring of `capacity` transitions.

    Storage is numpy (a slice write per vector-env step, a gather per batch, both without
    per-sample Python); batches become tensors without a copy on the CPU and with one
    host-to-device transfer per field on a GPU. Stacked frames (`frame_stack` > 1) are stored
    once each (FrameStackObservations), bool grids as bits (PackedBoolObservations). `anneal`
    and `update_priorities` are prioritized replay's hooks; here they do nothing, so the loop
    calls them whatever the replay.
    """

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: np.dtype, *, seed: int,
                 device: torch.device = torch.device("cpu"), n_step: int = 1, frame_stack: int = 1,
                 num_envs: int = 1):
        self.capacity = capacity
        self.device = device
        if frame_stack > 1:
            self.observations = FrameStackObservations(capacity, obs_shape, obs_dtype, num_envs, n_step)
        elif np.dtype(obs_dtype) == np.bool_:
            self.observations = PackedBoolObservations(capacity, obs_shape, obs_dtype)
        else:
            self.observations = StoredObservations(capacity, obs_shape, obs_dtype)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.position = 0  # next slot to write
        self.filled = 0  # slots written at least once
        self.size = 0  # sampleable transitions: the newest `size` slots before `position`
        self.n_step = n_step  # > 1: rows hold n-step returns and their own bootstrap factor
        self.rng = np.random.default_rng(seed)

    def _fields(self) -> Dict[str, np.ndarray]:
        return {**self.observations.arrays(), "actions": self.actions, "rewards": self.rewards,
                "terminated": self.terminated, "discounts": self.discounts}

    @property
    def nbytes(self) -> int:
        return self.observations.nbytes + sum(array.nbytes for array in
                                              (self.actions, self.rewards, self.terminated, self.discounts))

    @property
    def bytes_per_transition(self) -> float:
        return self.nbytes / self.capacity

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray) -> None:
        """Store one vector-env step, a transition per env. One-step replay needs no `truncated`
        (a truncated transition bootstraps like any other); n-step replay (NStepReplay) does."""
        self.store(obs, actions, rewards, next_obs, terminated)

    def store(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
              terminated: np.ndarray, discounts: np.ndarray | float = 0.0) -> None:
        """Write one transition per row; `discounts` is each row's bootstrap factor gamma^k
        (n-step replay), unused (0) for one-step replay, which uses gamma itself."""
        n = len(actions)
        end = self.position + n
        slots = slice(self.position, end) if end <= self.capacity else np.arange(self.position, end) % self.capacity
        self.observations.put(slots, obs, next_obs)
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.terminated[slots] = terminated
        self.discounts[slots] = discounts
        self.position = end % self.capacity
        self.filled = min(self.filled + n, self.capacity)
        self.size = min(self.size + n, self.capacity)
        while self.size and not self.observations.alive(self._oldest):
            self._drop(self._oldest)
            self.size -= 1

    @property
    def _oldest(self) -> int:
        return (self.position - self.size) % self.capacity

    def _drop(self, slot: int) -> None:
        """The oldest transition's frames are about to be overwritten: it is no longer sampled."""

    def sample(self, batch_size: int) -> Batch:
        """Uniformly random stored transitions (with replacement)."""
        return self.gather(self.draw_slots(batch_size, self.position, self.size))

    def draw_slots(self, batch_size: int, position: int, size: int) -> np.ndarray:
        """Uniformly random slots of the ring when it holds `size` transitions before `position`
        (prefetch=true draws for the ring as it will be after the next transition)."""
        # Slots [0, size) while the ring fills; the newest `size` before `position` once frames expire.
        start = 0 if size in (position, self.capacity) else position - size
        return (start + self.rng.integers(0, size, size=batch_size)) % self.capacity

    def gather(self, idx: np.ndarray, weights: Optional[np.ndarray] = None) -> Batch:
        """The transitions in slots `idx` as a Batch."""
        # np.take gathers rows faster than fancy indexing; on the CPU the tensors share the
        # gathered arrays' memory (no copy at all).
        to = self._to_tensor
        obs, next_obs = self.observations.get(idx)
        return Batch(to(obs).float(), to(np.take(self.actions, idx)), to(np.take(self.rewards, idx)),
                     to(next_obs).float(), to(np.take(self.terminated, idx)),
                     to(np.take(self.discounts, idx)) if self.n_step > 1 else None,
                     None if weights is None else to(weights), idx)

    def share_memory(self) -> None:
        """Move the stored transitions into memory a forked process shares (prefetch=true's worker)."""
        self.observations.share_memory()
        for name in ("actions", "rewards", "terminated", "discounts"):
            setattr(self, name, shared_copy(getattr(self, name)))

    def _to_tensor(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        return tensor if self.device.type == "cpu" else tensor.to(self.device, non_blocking=True)

    def anneal(self, progress: float) -> None:
        """Told the fraction of training done; uniform replay has nothing to anneal."""

    def update_priorities(self, batch: Batch, result: HasTDErrors) -> None:
        """Told what an update learned from `batch`; uniform replay keeps no priorities."""

    def state(self) -> dict:
        """The stored transitions (written slots only) and the ring position, as plain arrays."""
        return {**{name: array[:self.filled] for name, array in self._fields().items()},
                **self.observations.extra_state(), "position": np.array(self.position),
                "size": np.array(self.size), "capacity": np.array(self.capacity)}

    def load_state(self, state: dict) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"saved replay holds capacity {int(state['capacity'])}, this one {self.capacity}")
        self.filled = len(state["actions"])
        self.size = int(state["size"]) if "size" in state else self.filled
        for name, array in self._fields().items():
            array[:self.filled] = state[name]
        self.observations.load_extra_state(state)
        self.position = int(state["position"])

    def pending_state(self) -> list:
        """Transitions begun but not yet stored (n-step replay's); none here."""
        return []

    def load_pending_state(self, state: list) -> None:
        pass
