"""Proportional prioritized replay (Schaul et al., 2016) over a sum-tree."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from dqn_cli.replay.buffer import Batch, HasTDErrors, ReplayBuffer


class NonFinitePriority(ValueError):
    """A TD error became NaN or inf: as a priority it would corrupt every later sample."""


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
    """P(i) ~ p_i^alpha with p_i = |TD error| + eps, new transitions at the highest priority seen,
    importance-sampling weights (N * P(i))^-beta / max, beta annealed from `beta_start` to 1."""

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: np.dtype, *, seed: int,
                 device: torch.device = torch.device("cpu"), n_step: int = 1, frame_stack: int = 1,
                 num_envs: int = 1, alpha: float = 0.6, beta_start: float = 0.4, eps: float = 1e-6):
        super().__init__(capacity, obs_shape, obs_dtype, seed=seed, device=device, n_step=n_step,
                         frame_stack=frame_stack, num_envs=num_envs)
        self.alpha, self.beta_start, self.beta, self.eps = alpha, beta_start, beta_start, eps
        self.tree = SumTree(capacity)
        self.max_priority = 1.0  # the highest |TD error| + eps seen, before ^alpha

    def store(self, obs, actions, rewards, next_obs, terminated, discounts=0.0) -> None:
        slots = (self.position + np.arange(len(actions))) % self.capacity
        self.tree.update(slots, np.full(len(slots), self.max_priority ** self.alpha))
        super().store(obs, actions, rewards, next_obs, terminated, discounts)

    def _drop(self, slot: int) -> None:
        self.tree.update(np.array([slot]), np.zeros(1))

    def anneal(self, progress: float) -> None:
        self.beta = self.beta_start + min(max(progress, 0.0), 1.0) * (1.0 - self.beta_start)

    def sample(self, batch_size: int) -> Batch:
        # Stratified: one draw from each of batch_size equal slices of the total priority.
        edges = (np.arange(batch_size) + self.rng.random(batch_size)) * (self.tree.total / batch_size)
        # Rounding can put an edge at the very end of the tree, past the last filled leaf.
        idx = np.minimum(self.tree.find(edges), self.filled - 1)
        probabilities = self.tree.values(idx) / self.tree.total
        weights = (self.size * probabilities) ** -self.beta
        return self.gather(idx, (weights / weights.max()).astype(np.float32))

    def update_priorities(self, batch: Batch, result: HasTDErrors) -> None:
        priorities = result.td_errors.detach().cpu().numpy().astype(float) + self.eps
        if not np.isfinite(priorities).all():
            raise NonFinitePriority("the TD errors of a replay batch became NaN or inf")
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.update(batch.indices, priorities ** self.alpha)

    def state(self) -> dict:
        return {**super().state(), "priorities": self.tree.values(np.arange(self.filled)),
                "max_priority": np.array(self.max_priority)}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.tree.update(np.arange(self.filled), state["priorities"])
        self.max_priority = float(state["max_priority"])
