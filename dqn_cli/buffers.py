"""Replay storage in preallocated arrays: no Python object per transition."""

from __future__ import annotations

import math
import zlib
from collections import deque
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from dqn_cli.errors import TrainingDiverged


class Batch(NamedTuple):
    obs: torch.Tensor  # (B, *obs_shape) float32
    actions: torch.Tensor  # (B,) int64
    rewards: torch.Tensor  # (B,) float32, already scaled/clipped for training
    next_obs: torch.Tensor  # (B, *obs_shape) float32
    terminated: torch.Tensor  # (B,) float32: 1 stops bootstrapping, truncation stays 0
    discounts: Optional[torch.Tensor] = None  # (B,) gamma^k of each n-step transition (k rewards summed)
    weights: Optional[torch.Tensor] = None  # (B,) importance-sampling weights (prioritized replay)
    indices: Optional[np.ndarray] = None  # (B,) slots sampled (to update their priorities)


class StoredObservations:
    """Each transition's observation and next observation, stored whole (vectors, small images)."""

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: np.dtype):
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)

    def put(self, slots, obs: np.ndarray, next_obs: np.ndarray, lanes: np.ndarray) -> None:
        self.obs[slots] = obs
        self.next_obs[slots] = next_obs

    def get(self, idx: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        return np.take(self.obs, idx, axis=0), np.take(self.next_obs, idx, axis=0)

    def alive(self, slot: int) -> bool:
        return True

    @property
    def nbytes(self) -> int:
        return self.obs.nbytes + self.next_obs.nbytes

    def arrays(self) -> Dict[str, np.ndarray]:
        return {"obs": self.obs, "next_obs": self.next_obs}

    def extra_state(self) -> Dict[str, np.ndarray]:
        return {}

    def load_extra_state(self, state: Dict[str, np.ndarray]) -> None:
        pass


class FrameStackObservations:
    """Stacked-frame observations (env.frame_stack = k) that keep each distinct frame once.

    A stack (k, H, W) shares k-1 frames with the one before it, and a transition's next stack
    is the following transition's stack, so storing stacks repeats every frame 2k times. Here
    frames live once in a ring of uint8 screens, and a transition holds the ids of its 2k frames.
    A new frame is matched against the frames written in the last few steps (a CRC32, then an
    exact comparison), which finds the shared ones whatever the order rows arrive in (vector
    envs, n-step replay, episode starts). Ids grow forever; id % len(frames) is the ring slot.
    """

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: np.dtype, num_envs: int, n_step: int):
        self.stack = obs_shape[0]
        # Frames are matched only against the last `recent_frames` written: enough to span one
        # vector step of every env (2k frames per row, n-step rows from n steps back).
        self.recent_frames = 2 * self.stack * num_envs * (n_step + 2)
        # A transition's oldest frame is at most this much older than the newest frame when it was added.
        self.lag = self.recent_frames + 2 * self.stack * num_envs * n_step
        # Each transition adds about one new frame; episode starts and ends add one more each.
        self.frames = np.zeros((capacity + capacity // 32 + 2 * self.lag, *obs_shape[1:]), dtype=obs_dtype)
        self.obs_ids = np.zeros((capacity, self.stack), dtype=np.int64)
        self.next_ids = np.zeros((capacity, self.stack), dtype=np.int64)
        self.written = 0  # frames ever written; the next frame's id
        self.recent: Dict[int, list] = {}  # CRC32 -> ids of recent frames with that checksum
        self.recent_order: deque = deque()  # (crc, id), oldest first

    def _frame_id(self, frame: np.ndarray) -> int:
        crc = zlib.crc32(frame)
        for frame_id in self.recent.get(crc, ()):
            if np.array_equal(self.frames[frame_id % len(self.frames)], frame):
                return frame_id
        frame_id = self.written
        self.frames[frame_id % len(self.frames)] = frame
        self.written += 1
        self.recent.setdefault(crc, []).append(frame_id)
        self.recent_order.append((crc, frame_id))
        while len(self.recent_order) > self.recent_frames:
            old_crc, old_id = self.recent_order.popleft()
            ids = self.recent[old_crc]
            ids.remove(old_id)
            if not ids:
                del self.recent[old_crc]
        return frame_id

    def _stack_ids(self, stack: np.ndarray) -> list:
        return [self._frame_id(np.ascontiguousarray(frame)) for frame in stack]

    def put(self, slots, obs: np.ndarray, next_obs: np.ndarray, lanes: np.ndarray) -> None:
        for row, slot in enumerate(np.arange(self.obs_ids.shape[0])[slots]):
            self.obs_ids[slot] = self._stack_ids(obs[row])
            self.next_ids[slot] = self._stack_ids(next_obs[row])

    def get(self, idx: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        ring = len(self.frames)
        return self.frames[self.obs_ids[idx] % ring], self.frames[self.next_ids[idx] % ring]

    def alive(self, slot: int) -> bool:
        """Whether every frame of transition `slot`, and of all transitions added after it, still
        exists: transitions are dropped oldest first, `lag` frames before their frames are overwritten."""
        oldest = min(self.obs_ids[slot].min(), self.next_ids[slot].min())
        return oldest >= self.written - len(self.frames) + self.lag

    @property
    def nbytes(self) -> int:
        return self.frames.nbytes + self.obs_ids.nbytes + self.next_ids.nbytes

    def arrays(self) -> Dict[str, np.ndarray]:
        return {"obs_ids": self.obs_ids, "next_ids": self.next_ids}

    def extra_state(self) -> Dict[str, np.ndarray]:
        return {"frames": self.frames[:min(self.written, len(self.frames))], "frames_written": np.array(self.written)}

    def load_extra_state(self, state: Dict[str, np.ndarray]) -> None:
        self.frames[:len(state["frames"])] = state["frames"]
        self.written = int(state["frames_written"])


class ReplayBuffer:
    """Uniform replay over a ring of `capacity` transitions.

    Storage is numpy (a slice write per vector-env step, a fancy-index gather per batch, both
    without per-sample Python); batches become tensors without a copy on the CPU and with one
    host-to-device transfer per field on a GPU. Stacked frames (`frame_stack` > 1) are stored
    once each (FrameStackObservations).
    """

    keeps_priorities = False  # the loop hands each batch's |TD errors| back only to those that do

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: np.dtype, seed: int,
                 device: torch.device = torch.device("cpu"), n_step: int = 1, frame_stack: int = 1,
                 num_envs: int = 1):
        self.capacity = capacity
        self.device = device
        self.observations = (FrameStackObservations(capacity, obs_shape, obs_dtype, num_envs, n_step)
                             if frame_stack > 1 else StoredObservations(capacity, obs_shape, obs_dtype))
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
            terminated: np.ndarray, discounts: np.ndarray | float = 0.0, lanes: Optional[np.ndarray] = None) -> None:
        """Store one transition per row (a vector env's step); `discounts` is each row's bootstrap
        factor gamma^k (n-step replay), unused (0) for one-step replay, which uses gamma itself;
        `lanes` says which env each row came from (row i is env i if not given)."""
        n = len(actions)
        end = self.position + n
        slots = slice(self.position, end) if end <= self.capacity else np.arange(self.position, end) % self.capacity
        self.observations.put(slots, obs, next_obs, np.arange(n) if lanes is None else lanes)
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

    def sample(self, batch_size: int) -> Batch:
        """Uniformly random stored transitions (with replacement)."""
        # Slots [0, size) while the ring fills; the newest `size` before `position` once frames expire.
        start = 0 if self.size in (self.position, self.capacity) else self.position - self.size
        return self._gather((start + self.rng.integers(0, self.size, size=batch_size)) % self.capacity)

    def _gather(self, idx: np.ndarray, weights: Optional[np.ndarray] = None) -> Batch:
        # np.take gathers rows about twice as fast as fancy indexing; on the CPU the tensors
        # share the gathered arrays' memory (no copy at all).
        to = self._to_tensor
        obs, next_obs = self.observations.get(idx)
        field = lambda array: to(np.take(array, idx))  # noqa: E731
        return Batch(to(obs).float(), field(self.actions), field(self.rewards), to(next_obs).float(),
                     field(self.terminated), field(self.discounts) if self.n_step > 1 else None,
                     None if weights is None else to(weights), idx)

    def _to_tensor(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        return tensor if self.device.type == "cpu" else tensor.to(self.device, non_blocking=True)

    def anneal(self, progress: float) -> None:
        """Called with the fraction of training done; uniform replay has nothing to anneal."""


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

    keeps_priorities = True

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: np.dtype, seed: int,
                 device: torch.device = torch.device("cpu"), n_step: int = 1, frame_stack: int = 1,
                 num_envs: int = 1, alpha: float = 0.6, beta_start: float = 0.4, eps: float = 1e-6):
        super().__init__(capacity, obs_shape, obs_dtype, seed, device, n_step, frame_stack, num_envs)
        self.alpha, self.beta_start, self.beta, self.eps = alpha, beta_start, beta_start, eps
        self.tree = SumTree(capacity)
        self.max_priority = 1.0

    def add(self, obs, actions, rewards, next_obs, terminated, discounts=0.0, lanes=None) -> None:
        slots = (self.position + np.arange(len(actions))) % self.capacity
        self.tree.update(slots, np.full(len(slots), self.max_priority ** self.alpha))
        super().add(obs, actions, rewards, next_obs, terminated, discounts, lanes)

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
        return self._gather(idx, (weights / weights.max()).astype(np.float32))

    def update_priorities(self, indices: np.ndarray, td_errors: torch.Tensor) -> None:
        priorities = td_errors.detach().cpu().numpy().astype(float) + self.eps
        if not np.isfinite(priorities).all():  # a NaN priority would corrupt every later sample
            raise TrainingDiverged("the TD errors of a replay batch became NaN or inf; the last good "
                                   "checkpoint is kept (try a lower optimizer.lr)")
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.update(indices, priorities ** self.alpha)

    def state(self) -> dict:
        return {**super().state(), "priorities": self.tree.values(np.arange(self.filled)),
                "max_priority": np.array(self.max_priority)}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.tree.update(np.arange(self.filled), state["priorities"])
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
        """Add one vector step; returns the finished n-step transitions as arrays, the env of each
        row last (or None)."""
        out = []
        for i, queue in enumerate(self.pending):
            queue.append((obs[i], actions[i], float(rewards[i])))
            starts = range(len(queue)) if done[i] else ([0] if len(queue) == self.n else [])
            for start in starts:
                steps = queue[start:]
                reward = sum(self.gamma ** k * r for k, (_, _, r) in enumerate(steps))
                out.append((steps[0][0], steps[0][1], reward, next_obs[i], bool(terminated[i]),
                            self.gamma ** len(steps), i))
            if done[i]:
                queue.clear()
            elif len(queue) == self.n:
                queue.pop(0)
        if not out:
            return None
        o, a, r, n_obs, term, disc, lanes = zip(*out)
        return (np.stack(o), np.array(a), np.array(r, np.float32), np.stack(n_obs), np.array(term), np.array(disc),
                np.array(lanes))

    def state(self) -> list:
        return [[list(item) for item in queue] for queue in self.pending]

    def load_state(self, state: list) -> None:
        self.pending = [[(np.asarray(o), int(a), float(r)) for o, a, r in queue] for queue in state]


def build_buffer(cfg, obs_shape: Sequence[int], obs_dtype: np.dtype, seed: int, device: torch.device,
                 frame_stack: int = 1, num_envs: int = 1) -> ReplayBuffer:
    common = (cfg.capacity, obs_shape, obs_dtype, seed, device, cfg.n_step, frame_stack, num_envs)
    if getattr(cfg, "name", "uniform") == "prioritized":
        return PrioritizedReplayBuffer(*common, cfg.alpha, cfg.beta_start, cfg.eps)
    return ReplayBuffer(*common)
