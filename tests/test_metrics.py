"""metrics.py: what goes to TensorBoard, and the divergence check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_config
from dqn_cli import tb
from dqn_cli.errors import TrainingDiverged
from dqn_cli.metrics import Metrics, UpdateLog
from dqn_cli.report.runs import read_scalars
from dqn_cli.state import Counts, FinishedEpisode
from dqn_cli.trackers.base import Tracker


def test_episodes_that_end_together_are_one_point_of_their_mean(tmp_path: Path):
    metrics = Metrics(tmp_path, tiny_config(), Counts(0, 0), False, Tracker())
    metrics.episodes_ended_together([FinishedEpisode(130, 2.0, 10), FinishedEpisode(135, 4.0, 30)])
    metrics.episodes_ended_together([])
    metrics.episode(FinishedEpisode(200, 7.0, 5))
    metrics.close_progress(200)
    steps, returns = read_scalars(tmp_path, tb.EPISODE_RETURN)
    assert steps.tolist() == [135, 200] and np.allclose(returns, [3.0, 7.0])
    assert np.allclose(read_scalars(tmp_path, tb.EPISODE_LENGTH)[1], [20.0, 5.0])


def test_a_loss_that_is_not_finite_stops_training(tmp_path: Path):
    metrics = Metrics(tmp_path, tiny_config(), Counts(0, 0), False, Tracker())
    with pytest.raises(TrainingDiverged, match="TD loss became nan"):
        metrics.train_point(100, 0.5, UpdateLog(losses=[float("nan")], mean_qs=[0.0]))


def test_a_budget_that_vector_envs_step_past_is_evaluated_once_at_the_end(workdir: Path):
    from conftest import run_cli

    # 16 envs step 1,008 for a 1,000 budget: the evaluation that step 1,000 is due ends training too.
    result = run_cli("dqn-train", ["total_steps=1000", "eval.interval=500", "env.num_envs=16", "learning_starts=100",
                                   "eval.final_episodes=3", "log.progress=off"], workdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("eval @ 1,008:") == 1
