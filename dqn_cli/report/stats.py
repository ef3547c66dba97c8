"""The statistics of dqn-report: interquartile mean, bootstrap confidence intervals, probability of
improvement and performance profiles (after rliable: Agarwal et al., 2021, "Deep Reinforcement
Learning at the Edge of the Statistical Precipice"). Plain numpy, used by the tables and the plots."""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

BOOTSTRAP_SAMPLES = 10_000
MOVING_AVERAGE = 100
MIN_SEEDS_FOR_CI = 5  # below this a bootstrap interval of the mean is little more than [min, max]


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle 50% (trimming 25% at each end, at least 0 runs)."""
    ordered = np.sort(np.asarray(values, dtype=float))
    cut = int(math.floor(0.25 * len(ordered)))
    return float(ordered[cut:len(ordered) - cut].mean())


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, seed: int = 0) -> Tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (seeded, so reports are reproducible)."""
    data = np.asarray(values, dtype=float)
    if len(data) == 1:
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(BOOTSTRAP_SAMPLES, len(data)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def score_stats(values: Sequence[float]) -> dict:
    low, high = bootstrap_ci(values)
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "iqm": iqm(values),
            "ci95": [low, high], "ci95_meaningful": len(values) >= 5, "values": [float(v) for v in values]}


def moving_average(values: np.ndarray, window: int = MOVING_AVERAGE) -> np.ndarray:
    """Trailing mean over up to `window` previous points (shorter at the start)."""
    sums = np.cumsum(np.insert(values.astype(float), 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.arange(1, len(values) + 1) - counts]) / counts


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> float:
    """P(X > Y) for a run drawn from each group (ties count half): the Mann-Whitney U statistic over
    n*m, as rliable computes it for one task (Agarwal et al., 2021, "Deep Reinforcement Learning at
    the Edge of the Statistical Precipice")."""
    x, y = np.asarray(x, dtype=float)[:, None], np.asarray(y, dtype=float)[None, :]
    return float(((x > y) + 0.5 * (x == y)).mean())


def bootstrap_interval(statistic, groups: Sequence[Sequence[float]], confidence: float = 0.95,
                       samples: int = 2_000, seed: int = 0) -> Tuple[float, float]:
    """Percentile interval of `statistic(*groups)` with each group resampled on its own (stratified)."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(g, dtype=float) for g in groups]
    values = [statistic(*(a[rng.integers(0, len(a), len(a))] for a in arrays)) for _ in range(samples)]
    alpha = (1 - confidence) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def performance_profile(scores: Sequence[float], thresholds: np.ndarray) -> np.ndarray:
    """The fraction of runs scoring above each threshold (rliable's run-score distribution)."""
    return (np.asarray(scores, dtype=float)[:, None] > thresholds[None, :]).mean(axis=0)
