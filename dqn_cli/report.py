"""dqn-report: aggregate runs that differ only in seed into one honest row per configuration.

Reads run directories (summary.json, .hydra/overrides.yaml, TensorBoard event files) and writes
report.md, report.json, learning_curves.png and episode_returns.png. Works on sweeps that are
still running or where some runs failed, and says which.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from omegaconf import ListConfig, OmegaConf

from dqn_cli.checkpoint import atomic_write_bytes, atomic_write_json, training_in
from dqn_cli.errors import RunDirError

BOOTSTRAP_SAMPLES = 10_000
MOVING_AVERAGE = 100


@dataclass
class Run:
    path: Path
    overrides: List[str]
    seed: Optional[int]
    status: str  # finished | running | failed | incomplete | broken
    summary: Optional[dict] = None
    error: str = ""

    @property
    def config_overrides(self) -> frozenset:
        """The run's overrides without its seed: runs with equal sets are one configuration."""
        return frozenset(o for o in self.overrides if o.split("=", 1)[0].lstrip("+~") != "seed")


@dataclass
class Group:
    label: str
    runs: List[Run] = field(default_factory=list)

    @property
    def finished(self) -> List[Run]:
        return [r for r in self.runs if r.status == "finished"]


# ---------------------------------------------------------------------------------------------
# statistics


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


# ---------------------------------------------------------------------------------------------
# reading runs


def read_overrides(run_dir: Path) -> List[str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    overrides = OmegaConf.load(path)  # Hydra writes a YAML list of "key=value" strings
    if not isinstance(overrides, ListConfig):
        return []
    return [str(item) for item in OmegaConf.to_container(overrides, resolve=False)]  # as typed: ${...} stays


SUMMARY_KEYS = ("env_id", "final_eval", "wall_time_s", "steps_per_second")


def _seed_override(overrides: List[str]) -> Optional[int]:
    value = next((o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == "seed"), None)
    return int(value) if value is not None and value.lstrip("-").isdigit() else None  # not `${oc.env:SEED}`


def read_run(run_dir: Path) -> Run:
    """One run's status and summary; a summary that is unreadable or cut short is said, not fatal."""
    try:
        overrides = read_overrides(run_dir)
    except Exception as error:  # a garbled overrides.yaml
        overrides = []
        return Run(run_dir, overrides, None, "broken", error=f".hydra/overrides.yaml unreadable ({error})")
    seed = _seed_override(overrides)
    if training_in(run_dir):
        return Run(run_dir, overrides, seed, "running", error="a process is training in it now")
    if (run_dir / "summary.json").is_file():
        try:
            summary = json.loads((run_dir / "summary.json").read_text())
            missing = [key for key in SUMMARY_KEYS if key not in summary]
            missing += [f"final_eval.{name}" for name in ("best", "last")
                        if not isinstance(summary.get("final_eval", {}).get(name), dict)]
            if missing:
                raise ValueError(f"no {', '.join(missing)}")
        except (OSError, ValueError) as error:
            return Run(run_dir, overrides, seed, "broken", error=f"summary.json unreadable ({error})")
        if summary.get("partial"):
            return Run(run_dir, overrides, seed, "incomplete", error="final evaluation stopped early")
        return Run(run_dir, overrides, summary.get("seed", seed), "finished", summary)
    if (run_dir / "error.txt").is_file():
        error = (run_dir / "error.txt").read_text().strip().splitlines()
        return Run(run_dir, overrides, seed, "failed", error=error[-1] if error else "")
    return Run(run_dir, overrides, seed, "incomplete")


def _is_run_dir(path: Path) -> bool:
    return (path / ".hydra" / "config.yaml").is_file() or (path / "summary.json").is_file()


def find_runs(paths: Sequence[Path]) -> List[Run]:
    """Every run directory at or below the given paths (a sweep dir, run dirs, or a mix)."""
    run_dirs: List[Path] = []
    for path in paths:
        if not path.is_dir():
            raise RunDirError(f"{path} is not a directory; pass a sweep dir or run dirs (outputs/sweeps/<...>)")
        candidates = [path] if _is_run_dir(path) else sorted(p.parent.parent for p in path.glob("**/.hydra/config.yaml"))
        run_dirs += [p for p in candidates if p not in run_dirs]
    runs = [read_run(run_dir) for run_dir in run_dirs]
    if not runs:
        raise RunDirError(f"no dqn-train runs found under {', '.join(map(str, paths))}")
    return runs


def shared_overrides(runs: Sequence[Run]) -> frozenset:
    """Overrides every run has: said once in the report, left out of the configuration labels."""
    return frozenset.intersection(*(r.config_overrides for r in runs)) if runs else frozenset()


def group_runs(runs: Sequence[Run]) -> List[Group]:
    """One group per configuration, labelled by what sets it apart from the others; a single
    configuration is labelled by its env and preset."""
    shared = shared_overrides(runs)
    groups: Dict[str, Group] = {}
    for run in runs:
        label = ",".join(sorted(run.config_overrides - shared)) or _setup_label(runs, shared)
        groups.setdefault(label, Group(label)).runs.append(run)
    return sorted(groups.values(), key=lambda g: g.label)


def _setup_label(runs: Sequence[Run], shared: frozenset) -> str:
    envs = sorted({r.summary["env_id"] for r in runs if r.summary}) or sorted(
        o.split("=", 1)[1] for o in shared if o.startswith("env="))
    presets = sorted(o for o in shared if o.split("=", 1)[0].lstrip("+") in ("experiment", "variant"))
    return " ".join([" / ".join(envs) or "runs", *presets])


def labelled_groups(labels: Dict[str, Path]) -> List[Group]:
    """`dqn-report --label NAME=DIR ...`: every run under DIR is one group called NAME."""
    return [Group(name, find_runs([path])) for name, path in labels.items()]


def read_scalars(run_dir: Path, tag: str) -> Tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one TensorBoard scalar, every point (no reservoir sampling)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # It logs every file it scans, and warns of "a TensorFlow restart" where a resumed run's steps go
    # back to its checkpoint: the points written after it before the stop are dropped, as they should be.
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags().get("scalars", []):
        return np.zeros(0), np.zeros(0)
    points = events.Scalars(tag)
    return np.array([p.step for p in points]), np.array([p.value for p in points])


# ---------------------------------------------------------------------------------------------
# the report


def group_row(group: Group) -> dict:
    done = group.finished
    seeds = [r.seed for r in done]
    row: dict = {"configuration": group.label, "seeds": len(done), "runs": len(group.runs),
                 "failed": [str(r.path) for r in group.runs if r.status in ("failed", "broken")],
                 "incomplete": [str(r.path) for r in group.runs if r.status == "incomplete"],
                 "repeated_seeds": sorted({s for s in seeds if s is not None and seeds.count(s) > 1})}
    if not done:
        return row
    summaries = [r.summary for r in done]
    threshold = summaries[0].get("solve_threshold")
    best = [s["final_eval"]["best"]["mean"] for s in summaries]
    row.update({
        "env_id": summaries[0]["env_id"],
        "seed_list": [r.seed for r in done],
        "best": score_stats(best),
        "last": score_stats([s["final_eval"]["last"]["mean"] for s in summaries]),
        "solve_threshold": threshold,
        "solved_fraction": None if threshold is None else sum(b >= threshold for b in best) / len(best),
        "wall_time_s": float(np.mean([s["wall_time_s"] for s in summaries])),
        "steps_per_second": float(np.mean([s["steps_per_second"] for s in summaries])),
    })
    return row


MIN_SEEDS_FOR_CI = 5  # below this a bootstrap interval of the mean is little more than [min, max]


def _fmt(stats: dict) -> str:
    low, high = stats["ci95"]
    interval = f"[{low:.1f}, {high:.1f}]" if len(stats["values"]) >= MIN_SEEDS_FOR_CI else \
        f"n/a ({len(stats['values'])} seeds; needs {MIN_SEEDS_FOR_CI})"
    return f"{stats['mean']:.1f} ± {stats['std']:.1f} | {stats['iqm']:.1f} | {interval}"


def markdown(rows: List[dict], runs: List[Run]) -> str:
    shared = ", ".join(f"`{o}`" for o in sorted(shared_overrides(runs))) or "none"
    lines = ["# dqn-cli report", "", f"{len(runs)} runs; overrides shared by all of them: {shared}.", "",
             "Final greedy score of each run (mean over its final evaluation episodes), aggregated over "
             "seeds: mean ± std, interquartile mean (IQM) and a 95% bootstrap confidence interval of the "
             f"mean (shown from {MIN_SEEDS_FOR_CI} seeds on: with fewer it is about [min, max]).", "",
             "| configuration | env | seeds | best.pt mean ± std | best IQM | best 95% CI | last.pt mean ± std "
             "| last IQM | last 95% CI | solved | wall time | steps/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if not row["seeds"]:
            lines.append(f"| {row['configuration']} | | 0 of {row['runs']} | no finished run | | | | | | | | |")
            continue
        solved = "n/a" if row["solved_fraction"] is None else \
            f"{round(row['solved_fraction'] * row['seeds'])}/{row['seeds']} (>= {row['solve_threshold']:g})"
        lines.append(f"| {row['configuration']} | {row['env_id']} | {row['seeds']} of {row['runs']} | "
                     f"{_fmt(row['best'])} | {_fmt(row['last'])} | {solved} | {row['wall_time_s']:.1f} s | "
                     f"{row['steps_per_second']:,.0f} |")
    for row in rows:
        if row.get("repeated_seeds"):
            lines += ["", f"Warning: in {row['configuration']}, seed(s) {', '.join(map(str, row['repeated_seeds']))} "
                          "ran more than once and count as independent seeds here; same seed, same numbers."]
    problems = [r for r in runs if r.status != "finished"]
    if problems:
        lines += ["", "Runs left out:", ""]
        lines += [f"- `{r.path}`: {r.status}" + (f" ({r.error})" if r.error else "") for r in problems]
    lines += ["", "![learning curves](learning_curves.png)", "", "![episode returns](episode_returns.png)", ""]
    if len([row for row in rows if row["seeds"]]) > 1:
        lines += ["Probability of improvement and performance profiles of the final best.pt scores (95% "
                  "stratified-bootstrap intervals; after rliable, Agarwal et al., 2021):", "",
                  "![comparison](comparison.png)", ""]
    return "\n".join(lines)


def write_report(paths: Sequence[Path], out_dir: Optional[Path] = None,
                 labels: Optional[Dict[str, Path]] = None) -> Path:
    """Aggregate the runs under `paths` (or under each labelled dir, one group per label) and write
    the report files into `out_dir`."""
    from dqn_cli import plots

    groups = labelled_groups(labels) if labels else group_runs(find_runs(paths))
    runs = [run for group in groups for run in group.runs]
    if out_dir is None:
        out_dir = paths[0] if len(paths) == 1 and not labels and not _is_run_dir(paths[0]) else Path("report")
    rows = [group_row(g) for g in groups]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / "report.json", {"configurations": rows, "runs": [
            {"path": str(r.path), "seed": r.seed, "status": r.status, "overrides": r.overrides, "error": r.error}
            for r in runs]})
        atomic_write_bytes(out_dir / "report.md", markdown(rows, runs).encode())
        plots.learning_curves(groups, out_dir / "learning_curves.png")
        plots.episode_returns(groups, out_dir / "episode_returns.png")
        if len([g for g in groups if g.finished]) > 1:
            plots.comparison(groups, out_dir / "comparison.png")
    except OSError as error:
        raise RunDirError(f"cannot write the report to {error.filename or out_dir}: {error.strerror or error}; "
                          "pass --out <a writable folder>") from None
    return out_dir
