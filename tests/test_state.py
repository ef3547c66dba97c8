"""state.py: the loop's counters, interval crossings and the best evaluation kept."""

from __future__ import annotations

import numpy as np

from dqn_cli.state import Counts, TrainingState, crossings


def test_crossings_counts_interval_multiples_passed():
    assert crossings(0, 1, 4) == 0
    assert crossings(3, 4, 4) == 1
    assert crossings(3, 12, 4) == 3  # a vector env step of 9 transitions passes 4, 8 and 12


def test_record_step_counts_episodes_that_end_and_restarts_their_returns():
    state = TrainingState.start(np.zeros((3, 1)))
    assert state.record_step(np.ones((3, 1)), np.array([1.0, 2.0, 3.0]), np.array([False, False, False])) == []
    state.advance(3)
    finished = state.record_step(np.ones((3, 1)), np.array([1.0, 1.0, 1.0]), np.array([False, True, False]))
    state.advance(3)
    assert [(e.step, e.episode_return, e.length) for e in finished] == [(5, 3.0, 2)]
    assert state.episodes == 1 and list(state.returns) == [2.0, 0.0, 4.0] and state.counts == Counts(6, 1)
    assert state.passed(Counts(3, 0), 4) == 1 and state.passed(Counts(3, 0), 1, "episode") == 1


def test_record_if_best_keeps_only_a_better_or_equal_evaluation():
    state = TrainingState.start(np.zeros((1, 1)))
    assert state.record_if_best(10.0, 1.0)
    state.step = 100
    assert not state.record_if_best(9.0, 0.0) and state.best_eval == {"mean": 10.0, "std": 1.0, "step": 0}
    state.step = 200
    assert state.record_if_best(10.0, 2.0) and state.best_eval["step"] == 200  # ties go to the later weights
