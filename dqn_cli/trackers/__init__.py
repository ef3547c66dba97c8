"""Experiment trackers beside TensorBoard (which is always on): MLflow and Weights & Biases.

Each receives what TensorBoard receives (the same scalar tags at the same env steps), the
config as parameters and the summary as final metrics. A run keeps its tracker run across
resumes: the tracker's run id is saved in <run dir>/tracker.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from dqn_cli.config import MLflowTrackerConfig, TrackerConfig, WandbTrackerConfig
from dqn_cli.errors import ConfigError


class Tracker:
    """The interface, and tracker=none: every call does nothing."""

    def scalar(self, tag: str, value: float, step: int) -> None:
        pass

    def final(self, metrics: Dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


def run_name(env_id: str, seed: int, overrides: Sequence[str]) -> str:
    """'CartPole-v1 seed=0 target=soft': the env, the seed and what the command line changed."""
    rest = [o.lstrip("+") for o in overrides
            if o.split("=", 1)[0].lstrip("+").split(".")[0] not in ("seed", "resume", "tracker", "log")]
    return " ".join([env_id, f"seed={seed}", *rest])


def import_library(name: str, extra: str):
    try:
        return __import__(name)
    except ImportError:
        raise ConfigError(f"tracker={extra} needs the {name} package, which is not installed; "
                          f'pip install "dqn-cli[{extra}]"') from None


def build_tracker(cfg: TrackerConfig, run_dir: Path, name: str, group: Optional[str],
                  params: Dict[str, Any]) -> Tracker:
    """The tracker a `tracker` config asks for, started (or continued, on resume) for this run."""
    if not isinstance(cfg, (MLflowTrackerConfig, WandbTrackerConfig)):
        return Tracker()
    saved = run_dir / "tracker.json"
    previous = json.loads(saved.read_text()).get(cfg.name) if saved.is_file() else None
    if isinstance(cfg, MLflowTrackerConfig):
        from dqn_cli.trackers.mlflow_tracker import MLflowTracker

        tracker = MLflowTracker(cfg, name, group, params, previous)
    else:
        from dqn_cli.trackers.wandb_tracker import WandbTracker

        tracker = WandbTracker(cfg, run_dir, name, group, params, previous)
    saved.write_text(json.dumps({cfg.name: tracker.run_id}) + "\n")
    return tracker
