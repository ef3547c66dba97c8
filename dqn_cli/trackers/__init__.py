"""Experiment trackers beside TensorBoard (which is always on): MLflow and Weights & Biases.

Each receives what TensorBoard receives (the same scalar tags at the same env steps), the
config as parameters and the summary as final metrics. A run keeps its tracker run across
resumes: the tracker's run id is saved in <run dir>/tracker.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

from dqn_cli.config import MLflowTrackerConfig, TrackerConfig, WandbTrackerConfig
from dqn_cli.errors import ConfigError, UserError
from dqn_cli.trackers.base import TrackedRun, Tracker


def run_name(env_id: str, seed: int, overrides: Sequence[str]) -> str:
    """'target=soft seed=0 CartPole-v1': what the command line changed first (a runs table cuts long
    names at the end), then the seed and the env."""
    from dqn_cli.compose import changed_by

    return " ".join([*changed_by(overrides), f"seed={seed}", env_id])


def _mlflow(cfg: MLflowTrackerConfig, run: TrackedRun) -> Tracker:
    from dqn_cli.trackers.mlflow_tracker import MLflowTracker

    return MLflowTracker(cfg, run)


def _wandb(cfg: WandbTrackerConfig, run: TrackedRun) -> Tracker:
    from dqn_cli.trackers.wandb_tracker import WandbTracker

    return WandbTracker(cfg, run)


# tracker config name -> tracker(cfg, run); each library is imported only when its tracker is asked for.
# docs/extending.md adds one.
TRACKERS: Dict[str, Callable[[TrackerConfig, TrackedRun], Tracker]] = {"mlflow": _mlflow, "wandb": _wandb}


def build_tracker(cfg: TrackerConfig, run_dir: Path, name: str, group: Optional[str],
                  params: Dict[str, Any]) -> Tracker:
    """The tracker a `tracker` config asks for, started (or continued, on resume) for this run."""
    if cfg.name not in TRACKERS:
        return Tracker()  # tracker=none
    saved = run_dir / "tracker.json"
    previous = json.loads(saved.read_text()).get(cfg.name) if saved.is_file() else None
    try:
        tracker = TRACKERS[cfg.name](cfg, TrackedRun(run_dir, name, group, params, previous))
    except UserError:
        raise
    except Exception as error:  # a read-only store, a store this library version refuses, a server that says no
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"tracker={cfg.name} could not start: {first}; fix its settings (see docs/api.md) or "
                          "train with tracker=none") from None
    saved.write_text(json.dumps({cfg.name: tracker.run_id}) + "\n")
    return tracker
