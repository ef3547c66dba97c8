"""Episode units: train_freq, target.interval and exploration can count finished episodes, and
total_episodes is a budget, with one env or several, across a resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dqn_cli.agent import DQNAgent
from dqn_cli.algorithms import dqn as dqn_module
from dqn_cli.exploration import make_schedule
from dqn_cli.run.train import train
from dqn_cli.config import (ConstantExplorationConfig, EnvConfig, HardTargetConfig, LinearExplorationConfig,
                            TrainConfig)
from dqn_cli.errors import ConfigError, RunAlreadyFinished, TrainingInterrupted
from dqn_cli.metrics import Metrics
from conftest import TINY, run_cli
from conftest import tiny_config

TOTAL_EPISODES = 15


def episode_config(num_envs: int, **overrides) -> TrainConfig:
    """CountingEnv episodes last 3 or 4 steps; training and target sync count episodes."""
    settings = dict(env=EnvConfig(id="CountingEnv-v0", num_envs=num_envs), total_episodes=TOTAL_EPISODES,
                    learning_starts=8, train_freq=2, gradient_steps=3, train_freq_unit="episode",
                    target=HardTargetConfig(interval=3, interval_unit="episode"),
                    exploration=LinearExplorationConfig(unit="episode"))
    return tiny_config(**{**settings, **overrides})


def expected_rounds(episode_ends: list, num_envs: int, learning_starts: int, interval: int) -> int:
    """Loop ticks at step = n, 2n, ...; count, from learning_starts on, the episode numbers each tick
    reached that are multiples of `interval` -- written out episode by episode from the ends seen."""
    rounds, before, after_step = 0, 0, 0
    while before < len(episode_ends):
        after_step += num_envs
        after = sum(1 for end in episode_ends if end <= after_step)
        if after_step >= learning_starts:
            rounds += sum(1 for e in range(before + 1, after + 1) if e % interval == 0)
        before = after
    return rounds


@pytest.mark.parametrize("num_envs", [1, 3])
def test_training_and_target_sync_count_episodes(tmp_path: Path, monkeypatch, num_envs):
    episode_ends, target_syncs = [], []
    monkeypatch.setattr(DQNAgent, "update_target", lambda self, times=1: target_syncs.append(times))
    original_episode = Metrics.episode
    monkeypatch.setattr(Metrics, "episode", lambda self, ep: (episode_ends.append(ep.step), original_episode(self, ep)))
    cfg = episode_config(num_envs)
    summary = train(cfg, tmp_path)

    assert TOTAL_EPISODES <= summary["episodes"] == len(episode_ends) < TOTAL_EPISODES + num_envs
    assert summary["budget"] == {"total": TOTAL_EPISODES, "unit": "episode"}
    assert summary["updates"] == expected_rounds(episode_ends, num_envs, 8, 2) * 3 > 0
    assert sum(target_syncs) == expected_rounds(episode_ends, num_envs, 8, 3) > 0
    # counted in steps, the same settings would give other numbers
    assert summary["updates"] != expected_event_steps(summary["steps"], num_envs, 8, 2) * 3


def expected_event_steps(total_steps: int, num_envs: int, learning_starts: int, interval: int) -> int:
    return sum(1 for after in range(num_envs, total_steps + num_envs, num_envs) if after >= learning_starts
               for s in range(after - num_envs + 1, after + 1) if s % interval == 0)


@pytest.mark.parametrize("num_envs", [1, 3])
def test_exploration_schedule_reads_the_episode_count(tmp_path: Path, monkeypatch, num_envs):
    clocks = []
    original = make_schedule

    def recording_schedule(cfg, budget):
        schedule = original(cfg, budget)
        assert budget == TOTAL_EPISODES  # exploration.fraction is a share of total_episodes
        return lambda count: (clocks.append(count), schedule(count))[1]

    monkeypatch.setattr(dqn_module, "make_schedule", recording_schedule)
    summary = train(episode_config(num_envs), tmp_path)
    assert len(clocks) == summary["steps"] // num_envs  # asked once per loop tick ...
    assert clocks == sorted(clocks) and clocks[0] == 0  # ... with the episodes finished so far
    assert clocks[-1] == max(c for c in clocks) < TOTAL_EPISODES <= summary["episodes"]
    if num_envs == 1:
        assert sorted(set(clocks)) == list(range(TOTAL_EPISODES))


def test_the_book_schedule_in_episodes():
    """max(1%, 8% - 1% * episode / 200) is a line from 8% to 1% over 1,400 episodes."""
    schedule = make_schedule(LinearExplorationConfig(start=0.08, end=0.01, steps=1400, unit="episode"), 500)
    for episode in (0, 200, 700, 1399, 1400, 5000):
        assert schedule(episode) == pytest.approx(max(0.01, 0.08 - 0.01 * episode / 200))


@pytest.mark.parametrize("num_envs", [1, 2])
def test_an_episode_budget_resumes_exactly_and_then_is_finished(tmp_path: Path, num_envs):
    cfg = episode_config(num_envs, total_episodes=40)
    straight = train(cfg, tmp_path / "straight")
    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path / "resumed", should_stop=lambda step: step >= 60)
    resumed = train(cfg, tmp_path / "resumed", resume=True)
    for key in ("steps", "episodes", "updates", "final_eval", "best_periodic_eval"):
        assert straight[key] == resumed[key], key
    with pytest.raises(RunAlreadyFinished, match="total_episodes=<more than"):
        train(cfg, tmp_path / "resumed", resume=True)
    with pytest.raises(ConfigError, match="total_episodes=20 is below the episode count this run reached"):
        train(episode_config(num_envs, total_episodes=20), tmp_path / "resumed", resume=True)
    longer = train(episode_config(num_envs, total_episodes=50), tmp_path / "resumed", resume=True)
    assert longer["episodes"] >= 50 and longer["steps"] > straight["steps"]


def test_a_step_fraction_schedule_with_an_episode_budget_is_refused():
    with pytest.raises(ConfigError, match="exploration.unit='step'"):
        tiny_config(total_episodes=10)
    assert tiny_config(total_episodes=10, exploration=ConstantExplorationConfig()).budget == 10
    assert tiny_config(total_episodes=10, exploration=LinearExplorationConfig(steps=50)).budget_unit == "episode"


def test_a_sweep_with_an_episode_budget_is_reported(workdir: Path):
    from dqn_cli.report.plots import _setting
    from dqn_cli.report.runs import find_runs, group_runs

    result = run_cli("dqn-train", ["-m", "seed=0,1", "total_episodes=12", "exploration.unit=episode",
                                   "train_freq_unit=episode", "target.interval_unit=episode", *TINY], workdir)
    assert result.returncode == 0, result.stderr
    (sweep_dir,) = (workdir / "outputs" / "sweeps").iterdir()
    report = json.loads((sweep_dir / "report.json").read_text())
    (row,) = report["configurations"]
    assert row["seeds"] == 2 and len(row["best"]["values"]) == 2
    assert _setting(group_runs(find_runs([sweep_dir]))) == "CartPole-v1, 12 episodes, 2 seeds"


REFERENCE_PRESETS = ["book_cartpole", "book_cartpole_v0", "pytorch_tutorial", "lunarlander_article"]


@pytest.mark.parametrize("preset", REFERENCE_PRESETS)
def test_each_reference_preset_trains_a_few_episodes(workdir: Path, preset: str):
    """Their budgets are in episodes; a dozen short ones exercise the whole loop with updates."""
    result = run_cli("dqn-train", [f"experiment={preset}", "total_episodes=12", "learning_starts=64",
                                   "env.max_episode_steps=60", "eval.interval=200", "eval.episodes=2",
                                   "eval.final_episodes=3", "log.progress=off"], workdir)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (workdir / "outputs" / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["episodes"] == 12 and summary["budget"]["unit"] == "episode"
    assert summary["updates"] > 0 and 12 <= summary["steps"] <= 12 * 60
