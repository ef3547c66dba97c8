"""Nothing lost: exact resume, checkpoints that survive kills, and clear refusals."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_cli import tb
from dqn_cli.checkpoint import load_checkpoint
from dqn_cli.errors import RunDirError, TrainingDiverged, TrainingInterrupted
from dqn_cli.report.runs import read_scalars
from dqn_cli.run.train import train
from conftest import N, cartpole_config, scores


@pytest.fixture(scope="module")
def straight_and_resumed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume")
    straight = train(cartpole_config(), folder / "straight")
    with pytest.raises(TrainingInterrupted) as stopped:
        train(cartpole_config(), folder / "resumed", should_stop=lambda step: step >= N)
    assert stopped.value.step == N and "dqn-train resume=" in str(stopped.value)
    resumed = train(cartpole_config(), folder / "resumed", resume=True)
    return folder, straight, resumed


@pytest.mark.slow  # two whole training runs, compared bit for bit
def test_resume_gives_the_same_weights_and_scores_as_running_straight(straight_and_resumed):
    folder, straight, resumed = straight_and_resumed
    assert scores(resumed) == scores(straight)
    a = load_checkpoint(folder / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(folder / "resumed" / "checkpoints" / "last.pt")
    for key in ("online", "target"):
        assert all(torch.equal(a[key][name], b[key][name]) for name in a[key])
    assert a["counters"] == b["counters"]


@pytest.mark.slow  # two whole training runs
def test_a_resumed_runs_result_line_gives_its_total_steps_and_time(straight_and_resumed):
    from dqn_cli.console import result_line

    folder, straight, resumed = straight_and_resumed
    assert straight["resumed_at_step"] is None and straight["total_wall_time_s"] == straight["wall_time_s"]
    assert resumed["resumed_at_step"] == N and resumed["total_wall_time_s"] > resumed["wall_time_s"]
    line = result_line(folder / "resumed", resumed)
    assert f"| {resumed['steps']:,} steps in {resumed['total_wall_time_s']:.1f} s in all (resumed at step {N:,}: " \
           f"{resumed['steps'] - N:,} steps in {resumed['wall_time_s']:.1f} s)" in line
    assert result_line(folder / "straight", straight).endswith(f"steps in {straight['wall_time_s']:.1f} s")


@pytest.mark.slow  # two whole training runs, compared bit for bit
def test_resumed_tensorboard_has_no_duplicate_or_missing_points(straight_and_resumed):
    folder, _, _ = straight_and_resumed
    for tag in (tb.EPISODE_RETURN, tb.TD_LOSS, tb.EVAL_MEAN, tb.EPSILON):
        steps_a, values_a = read_scalars(folder / "straight", tag)
        steps_b, values_b = read_scalars(folder / "resumed", tag)
        assert steps_b.tolist() == steps_a.tolist() and np.allclose(values_a, values_b), tag


def test_a_resumed_runs_event_file_is_read_after_the_earlier_one(tmp_path: Path):
    """Names start with the second; one that shares it with an earlier file but sorts before it
    would make TensorBoard drop the earlier points as stale."""
    earlier = tmp_path / f"events.out.tfevents.{int(time.time()):010d}.zzzz.99999.99"
    earlier.write_bytes(b"")
    logger = tb.TensorBoardLogger(tmp_path, purge_step=100)
    logger.close()
    assert sorted(p.name for p in tmp_path.glob("events.out.tfevents.*"))[0] == earlier.name


@pytest.mark.slow  # two whole training runs, compared bit for bit
def test_only_the_newest_periodic_checkpoints_are_kept_with_their_replay(straight_and_resumed):
    folder, _, _ = straight_and_resumed
    ckpt = folder / "resumed" / "checkpoints"
    assert sorted(p.name for p in ckpt.glob("step_*.pt")) == ["step_000000001500.pt", "step_000000001800.pt"]
    assert sorted(p.name for p in ckpt.glob("replay_*.npz")) == ["replay_000000001500.npz", "replay_000000001800.npz"]
    assert not list(ckpt.glob(".*tmp*"))


def test_resume_falls_back_past_a_corrupt_checkpoint(tmp_path: Path, caplog):
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        train(cartpole_config(), run_dir, should_stop=lambda step: step >= N)
    newest = max((run_dir / "checkpoints").glob("step_*.pt"))
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, as by a full disk
    summary = train(cartpole_config(), run_dir, resume=True)
    assert summary["steps"] == 2 * N
    assert f"checkpoint {newest} is unreadable" in caplog.text


def test_resume_without_checkpoints_is_refused(tmp_path: Path):
    with pytest.raises(RunDirError, match="nothing to resume"):
        train(cartpole_config(), tmp_path / "empty", resume=True)


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path: Path):
    cfg = cartpole_config(optimizer=replace(cartpole_config().optimizer, lr=1e38), gamma=1.0)
    with pytest.raises(TrainingDiverged, match=r"at step [0-9]+|between steps [0-9]+ and [0-9]+") as error:
        train(cfg, tmp_path / "run")
    message = str(error.value)
    assert "NaN" in message or "nan" in message or "inf" in message
    for path in (tmp_path / "run" / "checkpoints").glob("*.pt"):
        state = load_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in state["online"].values())


def test_a_full_disk_mid_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path: Path, monkeypatch):
    import errno
    import os

    from dqn_cli import checkpoint

    target = tmp_path / "last.pt"
    target.write_bytes(b"previous good checkpoint")

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        checkpoint.atomic_write_bytes(target, b"new bytes that never fully land")
    monkeypatch.undo()
    assert target.read_bytes() == b"previous good checkpoint"
    assert os.listdir(tmp_path) == ["last.pt"]


def test_native_simulators_are_marked_inexact_and_plain_ones_exact():
    """Box2D keeps LunarLander's state in native objects, which no checkpoint can copy: on resume
    that env starts a new episode. Classic control is plain attributes: restored exactly."""
    import gymnasium as gym

    from dqn_cli.envs import capture_env_states, restore_env_states

    for env_id, exact in (("LunarLander-v3", False), ("CartPole-v1", True), ("Acrobot-v1", True)):
        envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id)])
        envs.reset(seed=[0])
        states = capture_env_states(envs)
        assert states[0]["exact"] is exact, env_id
        assert restore_env_states(envs, states) == ([] if exact else [0])
