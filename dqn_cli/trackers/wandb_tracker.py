"""Weights & Biases: one W&B run per dqn-train run, grouped by sweep."""

from __future__ import annotations

from typing import Dict

from dqn_cli.config import WandbTrackerConfig
from dqn_cli.trackers.base import TrackedRun, Tracker, import_library


class WandbTracker(Tracker):
    def __init__(self, cfg: WandbTrackerConfig, run: TrackedRun):
        wandb = import_library("wandb", "wandb")
        run_id = run.previous_id
        self.run = wandb.init(project=cfg.project, entity=cfg.entity, mode=cfg.mode, name=run.name, group=run.group,
                              config=run.params, dir=str(run.run_dir), id=run_id, resume="allow" if run_id else None,
                              reinit="create_new")
        self.run_id = self.run.id

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.run.log({tag: float(value)}, step=int(step))

    def final(self, metrics: Dict[str, float]) -> None:
        self.run.summary.update(metrics)

    def close(self) -> None:
        self.run.finish()
