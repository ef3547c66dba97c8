"""env.vectorization=async: Python training envs in worker processes play the same episodes as
side by side in this process, learn the same weights, and a stopped async run resumes."""

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_cli.checkpoint import load_checkpoint
from dqn_cli.config import AtariConfig, EnvConfig
from dqn_cli.envs import capture_env_states, make_vector_env
from dqn_cli.errors import TrainingInterrupted
from dqn_cli.run.train import train
from conftest import run_cli
from conftest import N, assert_same_step, cartpole_config, scores


def async_config(**overrides):
    cfg = cartpole_config(**overrides)
    return replace(cfg, env=replace(cfg.env, vectorization="async"))


def test_async_breakout_workers_play_the_episodes_of_sync_envs():
    """Breakout's lost lives end learner episodes: the workers must report them as the sync envs do."""
    base = EnvConfig(id="ALE/Breakout-v5", num_envs=2, import_module="ale_py", frame_stack=4, atari=AtariConfig())
    sync = make_vector_env(base, seed=0)
    workers = make_vector_env(replace(base, vectorization="async"), seed=0)
    assert type(workers).__name__ == "AsyncVectorEnv" and type(sync).__name__ == "SyncVectorEnv"
    assert np.array_equal(sync.reset(seed=[3, 4])[0], workers.reset(seed=[3, 4])[0])
    rng = np.random.default_rng(0)
    lives_lost = 0
    for _ in range(400):
        actions = rng.integers(0, 4, 2)
        expected, got = sync.step(actions), workers.step(actions)
        assert_same_step(got, expected)
        if "final_info" in expected[4]:
            lost = expected[4]["final_info"]["life_lost"] & expected[4]["final_info"]["_life_lost"]
            assert np.array_equal(lost, got[4]["final_info"]["life_lost"] & got[4]["final_info"]["_life_lost"])
            lives_lost += int(lost.sum())
    assert lives_lost >= 2  # episode ends of both kinds were compared
    sync.close()
    workers.close()


@pytest.mark.slow  # three short CartPole trainings compared bit for bit
def test_training_on_async_workers_learns_and_resumes(tmp_path: Path):
    on_workers = train(async_config(), tmp_path / "async")
    in_process = train(cartpole_config(), tmp_path / "sync")
    assert scores(on_workers) == scores(in_process)
    weights = [load_checkpoint(tmp_path / run / "checkpoints" / "last.pt")["online"] for run in ("async", "sync")]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])

    # Workers' env state stays in their processes: a resumed async run starts new episodes and goes on.
    with pytest.raises(TrainingInterrupted):
        train(async_config(), tmp_path / "stopped", should_stop=lambda step: step >= N)
    stopped = load_checkpoint(tmp_path / "stopped" / "checkpoints" / "last.pt")
    assert not any(env["exact"] for env in stopped["loop"]["envs"])
    resumed = train(async_config(), tmp_path / "stopped", resume=True)
    assert resumed["steps"] == on_workers["steps"] == 2 * N
    assert load_checkpoint(tmp_path / "stopped" / "checkpoints" / "last.pt")["counters"]["step"] == 2 * N


def test_async_env_states_are_marked_for_new_episodes():
    workers = make_vector_env(EnvConfig(id="CartPole-v1", num_envs=3, vectorization="async"), seed=0)
    workers.reset(seed=[0, 1, 2])
    assert capture_env_states(workers) == [{"exact": False}] * 3
    workers.close()


def test_a_joblib_sweep_runs_async_envs(workdir: Path):
    """Sweep jobs run in joblib's worker processes, whose own process context cannot hand the
    envs' shared memory to their workers."""
    result = run_cli("dqn-train", ["-m", "seed=0,1", "hydra/launcher=joblib", "env.num_envs=2",
                                   "env.vectorization=async", "total_steps=600", "learning_starts=100",
                                   "eval.interval=300", "eval.episodes=2", "eval.final_episodes=2",
                                   "log.progress=off"], workdir)
    assert result.returncode == 0, result.stderr
    assert len(list((workdir / "outputs" / "sweeps").glob("*/*/summary.json"))) == 2


def test_only_the_workers_ignore_the_terminals_signals():
    """AsyncVectorEnv also makes one env in the training process, whose Ctrl-C must still stop the run."""
    import signal
    from dqn_cli.envs.vector import _subprocess_training_env
    before = signal.getsignal(signal.SIGINT)
    _subprocess_training_env(EnvConfig(), os.getpid()).close()
    assert signal.getsignal(signal.SIGINT) is before
