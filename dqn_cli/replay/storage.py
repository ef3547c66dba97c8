"""Where replay keeps observations: whole (vectors, small images) or as frames stored once."""

from __future__ import annotations

import zlib
from collections import deque
from typing import Dict, Sequence, Tuple

import numpy as np

from dqn_cli.replay.shared import shared_copy


class StoredObservations:
    """Each transition's observation and next observation, stored whole (vectors, small images)."""

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: np.dtype):
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)

    def put(self, slots, obs: np.ndarray, next_obs: np.ndarray) -> None:
        self.obs[slots] = obs
        self.next_obs[slots] = next_obs

    def get(self, idx: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        return np.take(self.obs, idx, axis=0), np.take(self.next_obs, idx, axis=0)

    def alive(self, slot: int) -> bool:
        return True

    def share_memory(self) -> None:
        """Move the arrays into memory a forked process shares."""
        self.obs, self.next_obs = shared_copy(self.obs), shared_copy(self.next_obs)

    @property
    def nbytes(self) -> int:
        return self.obs.nbytes + self.next_obs.nbytes

    def arrays(self) -> Dict[str, np.ndarray]:
        return {"obs": self.obs, "next_obs": self.next_obs}

    def extra_state(self) -> Dict[str, np.ndarray]:
        return {}

    def load_extra_state(self, state: Dict[str, np.ndarray]) -> None:
        pass


class PackedBoolObservations(StoredObservations):
    """Bool observations (MinAtar's 10x10xC grids) stored as bits, eight cells per byte."""

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: np.dtype):
        self.shape, self.cells = tuple(obs_shape), int(np.prod(obs_shape))
        packed = ((self.cells + 7) // 8,)
        super().__init__(capacity, packed, np.uint8)

    def _pack(self, obs: np.ndarray) -> np.ndarray:
        return np.packbits(obs.reshape(len(obs), self.cells), axis=1)

    def _unpack(self, packed: np.ndarray) -> np.ndarray:
        cells = np.unpackbits(packed, axis=1, count=self.cells)
        return cells.view(np.bool_).reshape(len(packed), *self.shape)

    def put(self, slots, obs: np.ndarray, next_obs: np.ndarray) -> None:
        super().put(slots, self._pack(obs), self._pack(next_obs))

    def get(self, idx: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        return tuple(self._unpack(packed) for packed in super().get(idx))


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

    def put(self, slots, obs: np.ndarray, next_obs: np.ndarray) -> None:
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
