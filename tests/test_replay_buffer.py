"""replay/buffer.py: the ring of transitions, sampled uniformly (the base of prioritized replay)."""

from __future__ import annotations

import numpy as np
import torch

from dqn_cli.replay import ReplayBuffer


def test_buffer_wraps_around_and_keeps_the_newest():
    buffer = ReplayBuffer(capacity=5, obs_shape=(2,), obs_dtype=np.float32, seed=0)
    for start in range(0, 8, 2):  # 4 vector steps of 2 envs = 8 transitions into 5 slots
        rows = np.arange(start, start + 2)
        buffer.add(np.stack([rows, rows], 1), rows, rows.astype(float), np.stack([rows, rows], 1) + 1,
                   np.zeros(2, bool), np.zeros(2, bool))
    assert len(buffer) == 5 and buffer.position == 3
    assert sorted(buffer.actions.tolist()) == [3, 4, 5, 6, 7]
    batch = buffer.sample(64)
    assert batch.obs.shape == (64, 2) and batch.actions.dtype == torch.int64
    assert set(batch.actions.tolist()) <= {3, 4, 5, 6, 7}
    assert torch.equal(batch.next_obs[:, 0], batch.obs[:, 0] + 1)  # rows stay aligned


def test_buffer_storage_is_preallocated_and_compact():
    buffer = ReplayBuffer(capacity=1_000_000, obs_shape=(4,), obs_dtype=np.float32, seed=0)
    assert buffer.nbytes <= 64 * 2**20  # a 1M-transition CartPole buffer fits in 64 MB


def test_buffer_sampling_is_seeded():
    def draws(seed):
        buffer = ReplayBuffer(100, (1,), np.float32, seed=seed)
        buffer.store(np.zeros((100, 1)), np.arange(100), np.zeros(100), np.zeros((100, 1)), np.zeros(100))
        return buffer.sample(10).actions.tolist()
    assert draws(1) == draws(1) and draws(1) != draws(2)
