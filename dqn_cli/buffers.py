"""Replay storage in preallocated arrays: no Python object per transition."""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch


class Batch(NamedTuple):
    obs: torch.Tensor  # (B, *obs_shape) float32
    actions: torch.Tensor  # (B,) int64
    rewards: torch.Tensor  # (B,) float32, already scaled/clipped for training
    next_obs: torch.Tensor  # (B, *obs_shape) float32
    terminated: torch.Tensor  # (B,) float32: 1 stops bootstrapping, truncation stays 0
    discounts: Optional[torch.Tensor] = None  # (B,) gamma^k of each n-step transition (k rewards summed)
    weights: Optional[torch.Tensor] = None  # (B,) importance-sampling weights (prioritized replay)
    indices: Optional[np.ndarray] = None  # (B,) slots sampled (to update their priorities)


class ReplayBuffer:
    """Uniform replay over a ring of `capacity` transitions.

    Storage is numpy (a slice write per vector-env step, a fancy-index gather per batch, both
    without per-sample Python); batches become tensors without a copy on the CPU and with one
    host-to-device transfer per field on a GPU.
    """

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: np.dtype, seed: int,
                 device: torch.device = torch.device("cpu"), n_step: int = 1):
        self.capacity = capacity
        self.device = device
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.position = 0  # next slot to write
        self.size = 0
        self.n_step = n_step  # > 1: rows hold n-step returns and their own bootstrap factor
        self.rng = np.random.default_rng(seed)

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self._FIELDS)

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, discounts: np.ndarray | float = 0.0) -> None:
        """Store one transition per row (a vector env's step); `discounts` is each row's bootstrap
        factor gamma^k (n-step replay), unused (0) for one-step replay, which uses gamma itself."""
        n = len(actions)
        end = self.position + n
        slots = slice(self.position, end) if end <= self.capacity else np.arange(self.position, end) % self.capacity
        self.obs[slots] = obs
        self.next_obs[slots] = next_obs
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.terminated[slots] = terminated
        self.discounts[slots] = discounts
        self.position = end % self.capacity
        self.size = min(self.size + n, self.capacity)

    _FIELDS = ("obs", "next_obs", "actions", "rewards", "terminated", "discounts")

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
        return self._gather(self.rng.integers(0, self.size, size=batch_size))

    def _gather(self, idx: np.ndarray, weights: Optional[np.ndarray] = None) -> Batch:
        to = lambda array: torch.from_numpy(array[idx]).to(self.device, non_blocking=True)  # noqa: E731
        return Batch(to(self.obs).float(), to(self.actions), to(self.rewards), to(self.next_obs).float(),
                     to(self.terminated), to(self.discounts) if self.n_step > 1 else None,
                     None if weights is None else torch.from_numpy(weights).to(self.device, non_blocking=True),
                     idx)

    def anneal(self, progress: float) -> None:
        """Called with the fraction of training done; uniform replay has nothing to anneal."""

    def update_priorities(self, indices: np.ndarray, td_errors: torch.Tensor) -> None:
        """Uniform replay keeps no priorities."""


class SumTree:
    """Sums over a binary tree of `capacity` leaves: O(log n) update and prefix-sum search,
    both vectorised over a batch of indices."""

    def __init__(self, capacity: int):
        self.leaves = 1 << max(1, math.ceil(math.log2(capacity)))
        self.nodes = np.zeros(2 * self.leaves)  # nodes[1] is the root; leaf i is nodes[leaves + i]

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def values(self, indices: np.ndarray) -> np.ndarray:
        return self.nodes[self.leaves + indices]

    def update(self, indices: np.ndarray, values: np.ndarray) -> None:
        nodes = self.leaves + np.asarray(indices)
        self.nodes[nodes] = values
        parents = np.unique(nodes // 2)
        while True:  # every leaf is at the same depth, so each pass is one level up, ending at the root
            self.nodes[parents] = self.nodes[2 * parents] + self.nodes[2 * parents + 1]
            if parents[0] == 1:
                return
            parents = np.unique(parents // 2)

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """For each prefix sum, the leaf whose cumulative range contains it."""
        node = np.ones(len(prefix), dtype=np.int64)
        prefix = np.array(prefix, dtype=float)
        while node[0] < self.leaves:
            left = 2 * node
            go_right = prefix >= self.nodes[left]
            prefix -= self.nodes[left] * go_right
            node = left + go_right
        return node - self.leaves


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al., 2016): P(i) ~ p_i^alpha with p_i = |TD error|
    + eps, new transitions at the highest priority seen, importance-sampling weights
    (N * P(i))^-beta / max, beta annealed from `beta_start` to 1 over training."""

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: np.dtype, seed: int,
                 device: torch.device = torch.device("cpu"), n_step: int = 1, alpha: float = 0.6,
                 beta_start: float = 0.4, eps: float = 1e-6):
        super().__init__(capacity, obs_shape, obs_dtype, seed, device, n_step)
        self.alpha, self.beta_start, self.beta, self.eps = alpha, beta_start, beta_start, eps
        self.tree = SumTree(capacity)
        self.max_priority = 1.0

    def add(self, obs, actions, rewards, next_obs, terminated, discounts=0.0) -> None:
        slots = (self.position + np.arange(len(actions))) % self.capacity
        super().add(obs, actions, rewards, next_obs, terminated, discounts)
        self.tree.update(slots, np.full(len(slots), self.max_priority ** self.alpha))

    def anneal(self, progress: float) -> None:
        self.beta = self.beta_start + min(max(progress, 0.0), 1.0) * (1.0 - self.beta_start)

    def sample(self, batch_size: int) -> Batch:
        # Stratified: one draw from each of batch_size equal slices of the total priority.
        edges = (np.arange(batch_size) + self.rng.random(batch_size)) * (self.tree.total / batch_size)
        idx = np.minimum(self.tree.find(edges), self.size - 1)
        probabilities = self.tree.values(idx) / self.tree.total
        weights = (self.size * probabilities) ** -self.beta
        return self._gather(idx, (weights / weights.max()).astype(np.float32))

    def update_priorities(self, indices: np.ndarray, td_errors: torch.Tensor) -> None:
        priorities = td_errors.detach().cpu().numpy().astype(float) + self.eps
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.update(indices, priorities ** self.alpha)

    def state(self) -> dict:
        return {**super().state(), "priorities": self.tree.values(np.arange(self.size)),
                "max_priority": np.array(self.max_priority)}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.tree.update(np.arange(self.size), state["priorities"])
        self.max_priority = float(state["max_priority"])


class NStepAccumulator:
    """Turns one-step transitions into n-step ones, per env: the reward is the discounted sum of
    up to n rewards, the next observation the one n steps later, the bootstrap factor gamma^k
    for the k rewards summed. An episode's end (termination or truncation) flushes that env's
    pending starts with shorter sums; `terminated` is carried only if the episode terminated,
    so a time-limited end still bootstraps from its last observation."""

    def __init__(self, n: int, gamma: float, num_envs: int):
        self.n, self.gamma = n, gamma
        self.pending: list = [[] for _ in range(num_envs)]  # per env: [(obs, action, reward), ...]

    def push(self, obs, actions, rewards, next_obs, terminated, done) -> Optional[tuple]:
        """Add one vector step; returns the finished n-step transitions as arrays (or None)."""
        out = []
        for i, queue in enumerate(self.pending):
            queue.append((obs[i], actions[i], float(rewards[i])))
            starts = range(len(queue)) if done[i] else ([0] if len(queue) == self.n else [])
            for start in starts:
                steps = queue[start:]
                reward = sum(self.gamma ** k * r for k, (_, _, r) in enumerate(steps))
                out.append((steps[0][0], steps[0][1], reward, next_obs[i], bool(terminated[i]),
                            self.gamma ** len(steps)))
            if done[i]:
                queue.clear()
            elif len(queue) == self.n:
                queue.pop(0)
        if not out:
            return None
        o, a, r, n_obs, term, disc = zip(*out)
        return np.stack(o), np.array(a), np.array(r, np.float32), np.stack(n_obs), np.array(term), np.array(disc)

    def state(self) -> list:
        return [[list(item) for item in queue] for queue in self.pending]

    def load_state(self, state: list) -> None:
        self.pending = [[(np.asarray(o), int(a), float(r)) for o, a, r in queue] for queue in state]


def build_buffer(cfg, obs_shape: Sequence[int], obs_dtype: np.dtype, seed: int, device: torch.device) -> ReplayBuffer:
    if getattr(cfg, "name", "uniform") == "prioritized":
        return PrioritizedReplayBuffer(cfg.capacity, obs_shape, obs_dtype, seed, device, cfg.n_step, cfg.alpha,
                                       cfg.beta_start, cfg.eps)
    return ReplayBuffer(cfg.capacity, obs_shape, obs_dtype, seed, device, cfg.n_step)
