"""dqn-report's figures: learning curves, training returns, and the comparison of configurations."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List

import numpy as np

from dqn_cli.checkpoint import atomic_write_bytes
from dqn_cli.report.runs import Group, Run, read_scalars
from dqn_cli.report.stats import (MIN_SEEDS_FOR_CI, MOVING_AVERAGE, bootstrap_ci, bootstrap_interval, moving_average,
                                  performance_profile, probability_of_improvement)


def _setting(groups: List[Group]) -> str:
    """The env, the steps trained and the seed count, for titles: 'CartPole-v1, 40,000 steps, 5 seeds',
    or 'CartPole-v1, 13,008-16,000 steps (of 50,000; stopped when solved), 1 seed'."""
    summaries = [r.summary for g in groups for r in g.finished]
    envs = sorted({s["env_id"] for s in summaries})
    budgets = sorted({_budget(s) for s in summaries if "steps" in s})
    trained = sorted({s["steps"] for s in summaries if "steps" in s})
    steps = " / ".join(budgets)
    if trained and [f"{trained[-1]:,} steps"] != budgets and all(b.endswith(" steps") for b in budgets):
        span = f"{trained[0]:,}" + (f"-{trained[-1]:,}" if len(trained) > 1 else "")
        steps = f"{span} steps trained (of {steps}" + ("; stopped when solved)" if any(
            s.get("stopped_when_solved") for s in summaries) else ")")
    seeds = sorted({len(g.finished) for g in groups if g.finished})
    return ", ".join(filter(None, [" / ".join(envs), steps, " / ".join(map(str, seeds))
                                   + (" seed" if seeds == [1] else " seeds") if seeds else ""]))


def _episode_budgets(groups: List[Group]) -> bool:
    summaries = [r.summary for g in groups for r in g.finished]
    return bool(summaries) and all(s.get("budget", {}).get("unit") == "episode" for s in summaries)


def _budget(summary: dict) -> str:
    """'40,000 steps' or '600 episodes': the budget the run was given (older summaries: its steps)."""
    total, unit = (summary["budget"]["total"], summary["budget"]["unit"]) if "budget" in summary else \
        (summary["steps"], "step")
    return f"{total:,} {unit}s"


def _solve_line(axis, groups: List[Group], vertical: bool = False) -> None:
    """A dashed line at the env's solve threshold, when the runs name one."""
    thresholds = {r.summary.get("solve_threshold") for g in groups for r in g.finished} - {None}
    if len(thresholds) == 1:
        (threshold,) = thresholds
        line = axis.axvline if vertical else axis.axhline
        line(threshold, color="0.3", linestyle="--", linewidth=1, label=f"solved ({threshold:g})")


def _save_figure(figure, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def _steps_axis(axis) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.xaxis.set_major_locator(MaxNLocator(6))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k" if x else "0"))
    axis.set_xlabel("environment steps")


def held_when_solved(run: Run, steps: np.ndarray, values: np.ndarray, every_step: List[int]) -> tuple:
    """A run that stopped once solved (eval.stop_when_solved) keeps its final policy: its last
    evaluation holds at the later steps other runs reached, so the seeds' mean can go on."""
    if not (run.summary or {}).get("stopped_when_solved") or not len(steps):
        return steps, values
    later = [step for step in every_step if step > steps[-1]]
    return np.concatenate([steps, later]), np.concatenate([values, np.full(len(later), values[-1])])


def learning_curves(groups: List[Group], path: Path) -> None:
    """Periodic greedy evaluation against env steps: mean over seeds with a 95% bootstrap band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.8))
    for index, group in enumerate(groups):
        curves = [(run, read_scalars(run.path, "eval/mean_return")) for run in group.runs]
        curves = [(run, c) for run, c in curves if len(c[0])]
        if not curves:
            continue
        every_step = sorted(set().union(*(steps.tolist() for _, (steps, _) in curves)))
        curves = [held_when_solved(run, steps, values, every_step) for run, (steps, values) in curves]
        common = sorted(set.intersection(*(set(steps.tolist()) for steps, _ in curves)))
        if not common:
            continue
        matrix = np.array([[dict(zip(steps.tolist(), values))[s] for s in common] for steps, values in curves])
        mean = matrix.mean(axis=0)
        band = np.array([bootstrap_ci(matrix[:, j], seed=j) for j in range(len(common))])
        color = f"C{index % 10}"
        banded = len(curves) >= MIN_SEEDS_FOR_CI  # fewer seeds: an interval would be little more than [min, max]
        axis.plot(common, mean, color=color, label=f"{group.label} (n={len(curves)}"
                  + ("" if banded else f"; no CI below {MIN_SEEDS_FOR_CI} seeds") + ")")
        if banded:
            axis.fill_between(common, band[:, 0], band[:, 1], color=color, alpha=0.2)
    _steps_axis(axis)
    _solve_line(axis, groups)
    axis.set_ylabel("greedy evaluation return (mean over seeds)")
    axis.set_title(f"Learning curves: {_setting(groups)}\n(band: 95% bootstrap CI over seeds, from "
                   f"{MIN_SEEDS_FOR_CI} seeds on; a run that stopped when solved keeps its last score)")
    axis.grid(alpha=0.3)
    if axis.lines:
        axis.legend(fontsize=8, loc="best")
    _save_figure(figure, path)
    plt.close(figure)


def episode_returns(groups: List[Group], path: Path) -> None:
    """Training episode returns and their 100-episode moving average, one panel per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(len(groups), 2)  # panels stay readable at a page's width
    rows = math.ceil(len(groups) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 3.6 * rows), squeeze=False, sharey=True,
                                constrained_layout=True)
    by_episode = _episode_budgets(groups)  # runs given episodes are drawn against the episode count
    for axis, group in zip(axes.flat, groups):
        for index, run in enumerate(group.runs):
            steps, values = read_scalars(run.path, "train/episode_return")
            if not len(steps):
                continue
            x = np.arange(1, len(values) + 1) if by_episode else steps
            color = f"C{index % 10}"
            axis.plot(x, values, color=color, alpha=0.15, linewidth=0.6)
            axis.plot(x, moving_average(values), color=color, linewidth=1.4, label=f"seed {run.seed}")
        axis.set_title(group.label, fontsize=9)
        _solve_line(axis, [group])
        if by_episode:
            axis.set_xlabel("episodes")
        else:
            _steps_axis(axis)
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=7, loc="upper left")
    for axis in axes[:, 0]:
        axis.set_ylabel(f"episode return ({MOVING_AVERAGE}-ep. avg.)")
    for axis in list(axes.flat)[len(groups):]:
        axis.set_visible(False)
    figure.suptitle(f"Training episode returns: {_setting(groups)}\n(faint: every episode; bold: "
                    f"{MOVING_AVERAGE}-episode moving average)")
    _save_figure(figure, path)
    plt.close(figure)


def comparison(groups: List[Group], path: Path) -> None:
    """Probability of improvement for each pair of configurations and their performance profiles
    (final best.pt scores, one per run), both with 95% stratified-bootstrap intervals, after rliable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = {g.label: [r.summary["final_eval"]["best"]["mean"] for r in g.finished] for g in groups if g.finished}
    pairs = [(a, b) for a in scores for b in scores if a < b]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 1.5 + 0.5 * max(len(pairs), 4)), constrained_layout=True)
    for row, (a, b) in enumerate(pairs):
        estimate = probability_of_improvement(scores[a], scores[b])
        low, high = bootstrap_interval(probability_of_improvement, [scores[a], scores[b]], seed=row)
        left.barh(row, estimate, color="C0", alpha=0.7)
        left.plot([low, high], [row, row], color="k", linewidth=1.5)
    left.set_yticks(range(len(pairs)), [f"P({a} > {b})" for a, b in pairs], fontsize=8)
    left.axvline(0.5, color="0.3", linestyle="--", linewidth=1)
    left.set_xlim(0, 1)
    left.set_xlabel("probability of improvement (best.pt final score; 0.5: no difference)")
    left.invert_yaxis()
    few = sorted({len(v) for v in scores.values() if len(v) < MIN_SEEDS_FOR_CI})
    if few:  # the estimate is still drawn, with its caveat in the figure itself
        left.set_title(f"Caveat: n={' / '.join(map(str, few))} seeds (< {MIN_SEEDS_FOR_CI}): these probabilities "
                       "and intervals rest on too few runs to rely on", color="C3", fontsize=9)
    everything = np.concatenate([np.asarray(v, dtype=float) for v in scores.values()])
    thresholds = np.linspace(everything.min(), everything.max(), 100)
    for index, (label, values) in enumerate(scores.items()):
        profile = performance_profile(values, thresholds)
        bands = np.array([bootstrap_interval(lambda v, t=t: performance_profile(v, np.array([t]))[0], [values],
                                             samples=500, seed=j) for j, t in enumerate(thresholds)])
        right.plot(thresholds, profile, color=f"C{index % 10}", label=f"{label} (n={len(values)})")
        right.fill_between(thresholds, bands[:, 0], bands[:, 1], color=f"C{index % 10}", alpha=0.15)
    _solve_line(right, groups, vertical=True)
    right.set_xlabel("final greedy score of best.pt (tau)")
    right.set_ylabel("fraction of runs scoring > tau")
    right.legend(fontsize=8, loc="best")
    right.grid(alpha=0.3)
    figure.suptitle(f"Comparison: {_setting(groups)} (after rliable, Agarwal et al., 2021)")
    _save_figure(figure, path)
    plt.close(figure)
