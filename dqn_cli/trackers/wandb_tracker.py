"""Weights & Biases: one W&B run per dqn-train run, grouped by sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from dqn_cli.config import WandbTrackerConfig
from dqn_cli.trackers import Tracker, import_library


class WandbTracker(Tracker):
    def __init__(self, cfg: WandbTrackerConfig, run_dir: Path, name: str, group: Optional[str],
                 params: Dict[str, Any], run_id: Optional[str]):
        wandb = import_library("wandb", "wandb")
        self.run = wandb.init(project=cfg.project, entity=cfg.entity, mode=cfg.mode, name=name, group=group,
                              config=params, dir=str(run_dir), id=run_id, resume="allow" if run_id else None,
                              reinit="create_new")
        self.run_id = self.run.id

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.run.log({tag: float(value)}, step=int(step))

    def final(self, metrics: Dict[str, float]) -> None:
        self.run.summary.update(metrics)

    def close(self) -> None:
        self.run.finish()
