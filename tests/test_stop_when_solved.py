"""eval.stop_when_solved: training stops at the first periodic evaluation that reaches
env.solve_threshold, last.pt holds those weights, and a resume says the run is finished."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_cli.run import evaluator as evaluator_module
from dqn_cli.run.train import train
from dqn_cli.config import EnvConfig, EvalConfig
from dqn_cli.errors import RunAlreadyFinished
from dqn_cli.evaluate import EvalResult
from conftest import tiny_config


def solving_config(threshold, stop: bool = True):
    """CountingEnv's episodes return 3 or 4, so a threshold of 3 is reached by any policy."""
    return tiny_config(env=EnvConfig(id="CountingEnv-v0", num_envs=1, solve_threshold=threshold),
                       total_steps=60, learning_starts=10,
                       eval=EvalConfig(interval=20, episodes=1, final_episodes=1, stop_when_solved=stop))


def last_checkpoint_step(run_dir: Path) -> int:
    return int(torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["counters"]["step"])


def test_training_stops_at_the_first_evaluation_that_solves(tmp_path: Path):
    summary = train(solving_config(3.0), tmp_path / "run")
    assert summary["steps"] == 20 and summary["stopped_when_solved"] == 20
    assert last_checkpoint_step(tmp_path / "run") == 20
    assert summary["final_eval"]["last"] == summary["final_eval"]["best"]


@pytest.mark.parametrize("threshold, stop", [(100.0, True), (None, True), (3.0, False)])
def test_without_a_reachable_threshold_or_with_the_option_off_the_whole_budget_trains(tmp_path, threshold, stop):
    summary = train(solving_config(threshold, stop), tmp_path / "run")
    assert summary["steps"] == 60 and summary["stopped_when_solved"] is None
    assert last_checkpoint_step(tmp_path / "run") == 60


def test_a_run_that_stopped_when_solved_is_finished_unless_told_to_train_on(tmp_path: Path):
    cfg = solving_config(3.0)
    train(cfg, tmp_path / "run")
    with pytest.raises(RunAlreadyFinished, match="train it longer: dqn-train resume=.* eval.stop_when_solved=false"):
        train(cfg, tmp_path / "run", resume=True)
    train_on = replace(cfg, eval=replace(cfg.eval, stop_when_solved=False))
    summary = train(train_on, tmp_path / "run", resume=True)
    assert summary["steps"] == 60 and summary["stopped_when_solved"] is None


def test_a_lucky_evaluation_does_not_stop_training_unless_a_longer_one_confirms_it(tmp_path: Path, monkeypatch):
    """The periodic evaluation (1 episode here) reaches the threshold, but the confirming one over
    eval.final_episodes episodes does not: training goes on to its budget."""
    played = []

    def few_lucky_episodes(policy, env_cfg, episodes, seed, **kwargs):
        played.append(episodes)
        return EvalResult(np.full(episodes, 10.0 if episodes == 1 else 2.0), np.ones(episodes, dtype=np.int64))

    monkeypatch.setattr(evaluator_module, "evaluate", few_lucky_episodes)
    cfg = solving_config(3.0)
    cfg = replace(cfg, eval=replace(cfg.eval, final_episodes=5))
    summary = train(cfg, tmp_path / "run")
    assert summary["steps"] == 60 and summary["stopped_when_solved"] is None
    assert played.count(5) >= 4  # each periodic evaluation at 20, 40, 60 was checked, then the final ones
