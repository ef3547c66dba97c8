"""n-step returns: discounted sums, gamma^k bootstrapping, and episode ends (termination vs truncation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_cli.replay import NStepAccumulator, NStepReplay, PrioritizedReplayBuffer, ReplayBuffer
from dqn_cli.config import EnvConfig, PrioritizedBufferConfig, UniformBufferConfig
from dqn_cli.errors import TrainingInterrupted
from dqn_cli.run.train import train
from conftest import tiny_config


def run_episode(accumulator, rewards, terminated_at_end: bool):
    """One env; obs are the step index; the episode ends after the last reward."""
    out = []
    for t, reward in enumerate(rewards):
        last = t == len(rewards) - 1
        ready = accumulator.push(np.array([[t]]), np.array([t]), np.array([reward]), np.array([[t + 1]]),
                                 np.array([last and terminated_at_end]), np.array([last]))
        if ready is not None:
            out += list(zip(*ready))
    return [(int(o[0]), int(a), round(float(r), 6), int(n[0]), bool(term), float(d)) for o, a, r, n, term, d in out]


@pytest.mark.parametrize("terminated", [True, False])
def test_n_step_sums_and_flushes_at_episode_end(terminated):
    got = run_episode(NStepAccumulator(n=3, gamma=0.5, num_envs=1), [1, 2, 3, 4, 5], terminated)
    assert got == [
        (0, 0, 1 + 0.5 * 2 + 0.25 * 3, 3, False, 0.125),
        (1, 1, 2 + 0.5 * 3 + 0.25 * 4, 4, False, 0.125),
        # the end flushes the last starts with shorter sums; only termination stops bootstrapping
        (2, 2, 3 + 0.5 * 4 + 0.25 * 5, 5, terminated, 0.125),
        (3, 3, 4 + 0.5 * 5, 5, terminated, 0.25),
        (4, 4, 5.0, 5, terminated, 0.5),
    ]


def test_n_step_keeps_envs_apart():
    accumulator = NStepAccumulator(n=2, gamma=1.0, num_envs=2)
    first = accumulator.push(np.array([[0], [10]]), np.array([0, 1]), np.array([1.0, 10.0]),
                             np.array([[1], [11]]), np.array([False, True]), np.array([False, True]))
    assert first[2].tolist() == [10.0] and first[3].tolist() == [[11]]  # env 1 ended: flushed alone
    second = accumulator.push(np.array([[1], [0]]), np.array([0, 0]), np.array([2.0, 7.0]),
                              np.array([[2], [1]]), np.array([False, False]), np.array([False, False]))
    assert second[0].tolist() == [[0]] and second[2].tolist() == [3.0]  # env 0: 1 + 2, env 1 restarted


def test_n_step_replay_stores_through_the_same_add_as_every_replay():
    """The loop calls add(obs, actions, rewards, next_obs, terminated, truncated) on any replay;
    the n-step wrapper sums, and a truncated end flushes without stopping bootstrapping."""
    replay = NStepReplay(ReplayBuffer(10, (1,), np.float32, seed=0, n_step=2), n=2, gamma=0.5, num_envs=1)
    for t in range(3):
        last = t == 2
        replay.add(np.array([[t]]), np.array([t]), np.array([1.0]), np.array([[t + 1]]), np.array([False]),
                   np.array([last]))
    stored = replay.replay
    assert len(replay) == 3 and stored.actions[:3].tolist() == [0, 1, 2]
    assert stored.rewards[:3].tolist() == [1.5, 1.5, 1.0] and stored.discounts[:3].tolist() == [0.25, 0.25, 0.5]
    assert stored.terminated[:3].tolist() == [0.0, 0.0, 0.0] and replay.pending_state() == [[]]


def test_buffers_return_discounts_only_for_n_step():
    for buffer_class in (ReplayBuffer, PrioritizedReplayBuffer):
        one = buffer_class(10, (1,), np.float32, seed=0)
        one.store(np.zeros((3, 1)), np.zeros(3), np.zeros(3), np.zeros((3, 1)), np.zeros(3))
        assert one.sample(4).discounts is None
        three = buffer_class(10, (1,), np.float32, seed=0, n_step=3)
        three.store(np.zeros((3, 1)), np.zeros(3), np.zeros(3), np.zeros((3, 1)), np.zeros(3), np.full(3, 0.125))
        assert torch.allclose(three.sample(4).discounts, torch.full((4,), 0.125))


@pytest.mark.parametrize("buffer", [UniformBufferConfig(capacity=500, n_step=3),
                                    PrioritizedBufferConfig(capacity=500, n_step=1),
                                    PrioritizedBufferConfig(capacity=500, n_step=3)],
                         ids=["uniform-3-step", "prioritized", "prioritized-3-step"])
def test_replay_variants_train_and_resume_exactly(tmp_path: Path, buffer):
    """Pending n-step sums and priorities are part of the checkpoint: stop + resume == straight."""
    cfg = tiny_config(env=EnvConfig(id="CartPole-v1", num_envs=2), buffer=buffer, total_steps=600, learning_starts=100)
    straight = train(cfg, tmp_path / "a")
    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path / "b", should_stop=lambda step: step >= 300)
    resumed = train(cfg, tmp_path / "b", resume=True)
    assert straight["updates"] == resumed["updates"] > 0
    assert straight["final_eval"] == resumed["final_eval"]
