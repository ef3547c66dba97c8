"""Training on many CartPoles as one numpy batch (BatchedTrainingEnv) plays, learns and resumes
exactly as training on the same number of Python envs side by side (SyncVectorEnv)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_cli.envs import vector as dqn_envs
from dqn_cli.checkpoint import load_checkpoint
from dqn_cli.config import EnvConfig
from dqn_cli.envs import BatchedTrainingEnv, capture_env_states, make_vector_env, restore_env_states
from dqn_cli.errors import TrainingInterrupted
from dqn_cli.run.train import train
from conftest import N, assert_same_step, cartpole_config, scores

WIDTH = dqn_envs.BATCHED_TRAINING_FROM


def python_envs(monkeypatch) -> None:
    """From here on make_vector_env builds a SyncVectorEnv whatever the width."""
    monkeypatch.setattr(dqn_envs, "BATCHED_TRAINING_FROM", 10**9)


@pytest.mark.parametrize("env_id, limit", [("CartPole-v1", 30), ("CartPole-v1", None), ("CartPole-v0", None)])
def test_the_batch_plays_the_episodes_of_python_envs_bit_for_bit(monkeypatch, env_id, limit):
    cfg = EnvConfig(id=env_id, num_envs=WIDTH, max_episode_steps=limit)
    batch = make_vector_env(cfg, seed=0)
    python_envs(monkeypatch)
    sync = make_vector_env(cfg, seed=0)
    assert isinstance(batch, BatchedTrainingEnv) and not isinstance(sync, BatchedTrainingEnv)
    seeds = [7 + i for i in range(WIDTH)]
    assert np.array_equal(batch.reset(seed=seeds)[0], sync.reset(seed=seeds)[0])
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(1500):
        actions = rng.integers(0, 2, WIDTH)
        stepped = batch.step(actions)
        assert_same_step(stepped, sync.step(actions))
        ended += int((stepped[2] | stepped[3]).sum())
    assert ended > 100  # many same-step resets were compared, truncations among them when limit=30


def test_a_captured_batch_restores_into_python_envs_and_back(monkeypatch):
    """Checkpoints look the same whichever vector env wrote them."""
    cfg = EnvConfig(id="CartPole-v1", num_envs=WIDTH, max_episode_steps=40)
    batch = make_vector_env(cfg, seed=0)
    batch.reset(seed=list(range(WIDTH)))
    rng = np.random.default_rng(1)
    for _ in range(333):
        batch.step(rng.integers(0, 2, WIDTH))
    captured = capture_env_states(batch)
    python_envs(monkeypatch)
    sync = make_vector_env(cfg, seed=0)
    sync.reset(seed=[100 + i for i in range(WIDTH)])  # somewhere else entirely
    assert restore_env_states(sync, captured) == []
    fresh_batch = BatchedTrainingEnv(dqn_envs.make_batched_env(cfg, WIDTH),
                                     [dqn_envs.make_env(cfg, training=True) for _ in range(WIDTH)])
    fresh_batch.reset(seed=[200 + i for i in range(WIDTH)])
    assert restore_env_states(fresh_batch, capture_env_states(sync)) == []
    for _ in range(300):
        actions = rng.integers(0, 2, WIDTH)
        expected = batch.step(actions)
        assert_same_step(sync.step(actions), expected)
        assert_same_step(fresh_batch.step(actions), expected)


def batched_config():
    return replace(cartpole_config(), env=EnvConfig(id="CartPole-v1", num_envs=WIDTH), total_steps=4 * N)


@pytest.mark.slow  # three training runs compared bit for bit
def test_training_on_the_batch_learns_and_resumes_as_on_python_envs(tmp_path: Path, monkeypatch):
    batched = train(batched_config(), tmp_path / "batch")
    with monkeypatch.context() as patch:
        python_envs(patch)
        with pytest.raises(TrainingInterrupted):
            train(batched_config(), tmp_path / "python_then_batch", should_stop=lambda step: step >= 2 * N)
        on_python_envs = train(batched_config(), tmp_path / "python")
    resumed_on_batch = train(batched_config(), tmp_path / "python_then_batch", resume=True)
    assert scores(batched) == scores(on_python_envs) == scores(resumed_on_batch)
    final = [load_checkpoint(tmp_path / run / "checkpoints" / "last.pt") for run in
             ("batch", "python", "python_then_batch")]
    for other in final[1:]:
        assert all(torch.equal(final[0]["online"][name], other["online"][name]) for name in final[0]["online"])
        assert final[0]["counters"] == other["counters"]
