"""env.backend=envpool: EnvPool's Atari envs behind the training loops' vector-env interface, with
the preprocessing of the Gymnasium stack (atari.py). EnvPool is in the test extra; where its wheel
does not install (no Linux wheel for the platform), these tests are skipped with that reason."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import only_run_dir, run_cli
from dqn_cli.config import AtariConfig, EnvConfig
from dqn_cli.envs import capture_env_states, game_over, make_vector_env, real_next_obs
from dqn_cli.envs.envpool_atari import EnvPoolAtari
from dqn_cli.errors import ConfigError

pytest.importorskip("envpool", reason="EnvPool has no wheel for this platform (Linux x86-64/aarch64 only)")


def side_by_side(game: str, **atari):
    """The same game through Gymnasium's stack and EnvPool, two envs each."""
    cfg = EnvConfig(id=game, num_envs=2, import_module="ale_py", frame_stack=4, reward_clip=1.0,
                    atari=AtariConfig(**atari))
    gymnasium_envs, pool = make_vector_env(cfg, 0), make_vector_env(replace(cfg, backend="envpool"), 0)
    assert isinstance(pool, EnvPoolAtari) and pool.single_observation_space == gymnasium_envs.single_observation_space
    assert pool.single_action_space == gymnasium_envs.single_action_space
    return gymnasium_envs, pool


@pytest.mark.parametrize("game, most_grey_levels_apart", [("ALE/Pong-v5", 0), ("ALE/Breakout-v5", 1)])
def test_envpool_plays_the_frames_rewards_and_ends_of_the_gymnasium_stack(game, most_grey_levels_apart):
    """Without the resets that differ (one no-op start, no FIRE press, whole games), the same actions
    give the same stacked screens (up to the resize's rounding), rewards and episode ends."""
    gymnasium_envs, pool = side_by_side(game, noop_max=1, fire_on_life_start=False, episodic_life=False)
    ours, theirs = gymnasium_envs.reset(seed=[0, 1])[0], pool.reset()[0]
    rng = np.random.default_rng(0)
    rewards = np.zeros((2, 2))
    for _ in range(250):
        assert np.abs(ours.astype(int) - theirs).max() <= most_grey_levels_apart
        actions = rng.integers(0, pool.single_action_space.n, 2)
        ours, our_rewards, our_ends, our_cuts, _ = gymnasium_envs.step(actions)
        theirs, their_rewards, their_ends, their_cuts, _ = pool.step(actions)
        assert their_rewards.dtype == np.float64 and (our_rewards == their_rewards).all()
        assert (our_ends == their_ends).all() and (our_cuts == their_cuts).all()
        rewards += [our_rewards, their_rewards]
    assert rewards[0].any(), "the test should see rewards"  # unclipped: the loop clips (env.reward_clip)
    gymnasium_envs.close(), pool.close()


def test_a_lost_life_ends_the_learners_episode_on_the_same_step_and_is_told_from_a_game_over():
    gymnasium_envs, pool = side_by_side("ALE/Breakout-v5", noop_max=1, fire_on_life_start=False)
    ours, theirs = gymnasium_envs.reset(seed=[0, 1])[0], pool.reset()[0]
    rng = np.random.default_rng(1)
    for step in range(2000):
        actions = rng.integers(0, pool.single_action_space.n, 2)
        before = theirs.copy()
        ours, _, our_ends, _, our_info = gymnasium_envs.step(actions)
        theirs, _, their_ends, their_cuts, their_info = pool.step(actions)
        if their_ends.any():
            break
    assert step < 2000 and (our_ends == their_ends).all()
    ended = np.flatnonzero(their_ends)[0]
    assert (game_over(their_ends, their_info) == game_over(our_ends, our_info)).all()
    assert not game_over(their_ends, their_info)[ended]  # a life, not the game: the score goes on
    reached = real_next_obs(theirs, their_ends, their_info)[ended]
    assert (reached[:3] == before[ended][1:]).all()  # the screen the life was lost on, in its stack
    assert np.abs(reached.astype(int) - real_next_obs(ours, our_ends, our_info)[ended]).max() <= 1
    assert not np.array_equal(theirs[ended], reached)  # the env already plays its next life
    assert capture_env_states(pool) == [{"exact": False}] * 2  # a resume starts new games
    gymnasium_envs.close(), pool.close()


def test_envpool_refuses_what_it_cannot_play():
    with pytest.raises(ConfigError, match="env.backend=envpool steps the Atari games"):
        EnvConfig(id="CartPole-v1", backend="envpool")
    atari = EnvConfig(id="ALE/Pong-v5", import_module="ale_py", frame_stack=4, atari=AtariConfig(), backend="envpool")
    with pytest.raises(ConfigError, match="env.make_kwargs.render_mode .*does not take"):
        replace(atari, make_kwargs={"render_mode": "rgb_array"})


def test_settings_envpool_cannot_play_as_the_gymnasium_stack_does_are_refused_before_any_env(monkeypatch):
    atari = EnvConfig(id="ALE/Pong-v5", import_module="ale_py", frame_stack=4, atari=AtariConfig(), backend="envpool")
    with pytest.raises(ConfigError, match="env.atari.noop_max=0 with env.backend=envpool"):  # EnvPool would crash
        EnvConfig(**{**vars(atari), "atari": AtariConfig(noop_max=0)})
    # Whatever else made EnvPool's screens differ from those evaluation plays is one line, not a crash mid-run
    import dqn_cli.envs.envpool_atari as backend

    settings = backend.envpool_settings
    monkeypatch.setattr(backend, "envpool_settings", lambda cfg, training: {**settings(cfg, training), "img_height": 80})
    with pytest.raises(ConfigError, match=r"observations of shape \(4, 80, 84\).*evaluation plays \(4, 84, 84\)"):
        make_vector_env(atari, 0)


def test_without_envpool_installed_the_backend_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "envpool", None)  # what Python does for a module that is not there
    with pytest.raises(ConfigError, match=r'env.backend=envpool needs EnvPool .*pip install "dqn-cli\[envpool\]"'):
        make_vector_env(EnvConfig(id="ALE/Pong-v5", import_module="ale_py", frame_stack=4, atari=AtariConfig(),
                                  backend="envpool"), 0)


def test_one_frame_without_a_stack_has_the_gymnasium_envs_shape():
    cfg = EnvConfig(id="ALE/Breakout-v5", import_module="ale_py", frame_stack=1, atari=AtariConfig(), num_envs=2)
    pool = make_vector_env(replace(cfg, backend="envpool"), 0)
    obs, _ = pool.reset()
    assert obs.shape == (2, 84, 84) == (2, *make_vector_env(cfg, 0).single_observation_space.shape)
    for _ in range(300):  # through some lost lives: their resets keep the shape too
        obs, *_ = pool.step(np.ones(2, dtype=int))
        assert obs.shape == (2, 84, 84)
    pool.close()


@pytest.mark.parametrize("args, says", [
    (["env.backend=envpool"], "env.backend=envpool steps the Atari games (env=pong, env=breakout), not env.id=CartPole-v1"),
    (["env=pong", "env.backend=envpool", "+env.make_kwargs.render_mode=rgb_array"],
     "env.make_kwargs.render_mode is a gymnasium.make argument that env.backend=envpool does not take"),
    (["env=breakout", "env.backend=envpool", "env.atari.noop_max=0"], "env.atari.noop_max=0 with env.backend=envpool")])
def test_envpool_refusals_on_the_command_line_are_one_line(workdir: Path, args, says):
    result = run_cli("dqn-train", args, workdir)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    assert says in result.stderr
    assert not (workdir / "outputs").exists()


def test_pqn_atari_trains_on_envpool_evaluates_and_resumes(workdir: Path):
    """experiment=pqn_atari end to end on a tiny budget (its CPU smoke test), then a resume."""
    small = ["experiment=pqn_atari", "env.num_envs=2", "algorithm.rollout_steps=8", "algorithm.minibatches=2",
             "algorithm.epochs=1", "env.max_episode_steps=60", "eval.interval=0", "eval.final_episodes=1",
             "log.progress=off"]
    result = run_cli("dqn-train", [*small, "total_steps=32"], workdir)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = only_run_dir(workdir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_id"] == "ALE/Pong-v5" and summary["steps"] == 32 and summary["updates"] == 4
    assert summary["final_eval"]["best"]["mean_length"] == 60  # evaluated on the Gymnasium env
    resumed = run_cli("dqn-train", [f"resume={run_dir}", "total_steps=64"], workdir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 64
