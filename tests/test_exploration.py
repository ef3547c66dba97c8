"""exploration.py: the epsilon schedules and epsilon-greedy action choice."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dqn_cli.config import ConstantExplorationConfig, ExponentialExplorationConfig, LinearExplorationConfig
from dqn_cli.exploration import epsilon_greedy, exponential_epsilon, linear_epsilon, make_schedule


def test_linear_epsilon_runs_from_start_to_end_then_stays():
    assert linear_epsilon(0, 1.0, 0.1, 100) == 1.0
    assert linear_epsilon(50, 1.0, 0.1, 100) == pytest.approx(0.55)
    assert linear_epsilon(100, 1.0, 0.1, 100) == pytest.approx(0.1)
    assert linear_epsilon(10_000, 1.0, 0.1, 100) == pytest.approx(0.1)


def test_linear_schedule_uses_fraction_of_total_or_explicit_steps():
    by_fraction = make_schedule(LinearExplorationConfig(start=1.0, end=0.0, fraction=0.5), total_steps=1000)
    assert by_fraction(250) == pytest.approx(0.5)
    by_steps = make_schedule(LinearExplorationConfig(start=1.0, end=0.0, fraction=0.5, steps=100), 1000)
    assert by_steps(50) == pytest.approx(0.5) and by_steps(100) == pytest.approx(0.0)


def test_exponential_and_constant_schedules():
    assert exponential_epsilon(0, 0.9, 0.05, 1000) == pytest.approx(0.9)
    assert exponential_epsilon(1000, 0.9, 0.05, 1000) == pytest.approx(0.05 + 0.85 / math.e)
    schedule = make_schedule(ExponentialExplorationConfig(start=0.9, end=0.05, decay=1000), 10)
    assert schedule(10 ** 6) == pytest.approx(0.05)
    assert make_schedule(ConstantExplorationConfig(epsilon=0.2), 10)(12345) == 0.2


def test_epsilon_greedy_explores_at_the_rate_asked_and_skips_the_forward_pass_when_all_explore():
    greedy = np.full(10_000, 7)
    calls = []
    actions = epsilon_greedy(lambda: (calls.append(1), greedy.copy())[1], 10_000, 0.25, np.random.default_rng(0), 3)
    assert calls and abs((actions != 7).mean() - 0.25) < 0.02  # actions 0-2 are never 7
    calls.clear()
    all_random = epsilon_greedy(lambda: (calls.append(1), greedy.copy())[1], 50, 1.0, np.random.default_rng(0), 3)
    assert not calls and set(all_random) <= {0, 1, 2}
    assert np.array_equal(epsilon_greedy(lambda: greedy.copy(), 10_000, 0.0, np.random.default_rng(0), 3), greedy)
