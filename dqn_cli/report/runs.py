"""Reading run directories for dqn-report: each run's status and summary, grouped by configuration,
and its TensorBoard scalars."""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from omegaconf import ListConfig, OmegaConf

from dqn_cli.checkpoint import training_in
from dqn_cli.errors import RunDirError


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
        """The run's overrides without its seed and without those that name a default (env=cartpole,
        target=hard, gamma=0.99 without a preset): runs with equal sets are one configuration."""
        preset = any(o.split("=", 1)[0].lstrip("+") == "experiment" for o in self.overrides)
        return frozenset(o for o in self.overrides if o.split("=", 1)[0].lstrip("+~") != "seed"
                         and (preset or not names_a_default(o)))


def names_a_default(override: str) -> bool:
    """`env=cartpole`, `target=hard`, `gamma=0.99`: what a plain dqn-train uses anyway."""
    from dqn_cli.help import GROUP_DEFAULTS

    key, _, value = override.partition("=")
    if key.startswith(("+", "~")):
        return False
    if key in GROUP_DEFAULTS:
        return GROUP_DEFAULTS[key] == value
    top_level = _top_level_defaults()
    return key in top_level and not isinstance(top_level[key], dict) and str(top_level[key]) == value


@functools.lru_cache(maxsize=1)
def _top_level_defaults() -> Dict[str, object]:
    from dqn_cli.hydra_errors import CONF_DIR

    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml"))


@dataclass
class Group:
    label: str
    runs: List[Run] = field(default_factory=list)

    @property
    def finished(self) -> List[Run]:
        return [r for r in self.runs if r.status == "finished"]


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


def is_run_dir(path: Path) -> bool:
    return (path / ".hydra" / "config.yaml").is_file() or (path / "summary.json").is_file()


def find_runs(paths: Sequence[Path]) -> List[Run]:
    """Every run directory at or below the given paths (a sweep dir, run dirs, or a mix)."""
    run_dirs: List[Path] = []
    for path in paths:
        if not path.is_dir():
            raise RunDirError(f"{path} is not a directory; pass a sweep dir or run dirs (outputs/sweeps/<...>)")
        candidates = [path] if is_run_dir(path) else sorted(p.parent.parent for p in path.glob("**/.hydra/config.yaml"))
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
    # A default named on the command line (target=hard) stays in a label where other groups set that key.
    swept = {o.split("=", 1)[0] for run in runs for o in run.config_overrides - shared}
    groups: Dict[frozenset, Group] = {}
    for run in runs:
        own = run.config_overrides - shared
        if own not in groups:
            named = {o for o in run.overrides if names_a_default(o) and o.split("=", 1)[0] in swept
                     and o.split("=", 1)[0] not in {k.split("=", 1)[0] for k in own}}
            groups[own] = Group(",".join(sorted(own | named)) or _setup_label(runs, shared))
        groups[own].runs.append(run)
    return sorted(groups.values(), key=lambda g: g.label)


def _setup_label(runs: Sequence[Run], shared: frozenset) -> str:
    envs = sorted({r.summary["env_id"] for r in runs if r.summary}) or sorted(
        o.split("=", 1)[1] for o in shared if o.startswith("env="))
    presets = sorted(o for o in shared if o.split("=", 1)[0].lstrip("+") in ("experiment", "variant"))
    return " ".join([" / ".join(envs) or "runs", *presets])


def labelled_groups(labels: Dict[str, Path]) -> List[Group]:
    """`dqn-report --label NAME=DIR ...`: every run under DIR is one group called NAME; runs of
    several envs under one DIR are one group per env, "NAME (env)", never averaged together."""
    groups = []
    for name, path in labels.items():
        runs = find_runs([path])
        envs = sorted({r.summary["env_id"] for r in runs if r.summary})
        if len(envs) <= 1:
            groups.append(Group(name, runs))
            continue
        groups += [Group(f"{name} ({env})", [r for r in runs if r.summary and r.summary["env_id"] == env])
                   for env in envs]
        unfinished = [r for r in runs if not r.summary]
        if unfinished:
            groups.append(Group(f"{name} (not finished)", unfinished))
    return groups


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
