"""Weights & Biases: one W&B run per dqn-train run, grouped by sweep."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Sequence

from dqn_cli.config import WandbTrackerConfig
from dqn_cli.trackers.base import TrackedRun, Tracker, check_service_answers, import_library


class WandbTracker(Tracker):
    def __init__(self, cfg: WandbTrackerConfig, run: TrackedRun):
        wandb = import_library("wandb", "wandb")
        if (cfg.mode or os.environ.get("WANDB_MODE") or "online") == "online":
            service = os.environ.get("WANDB_BASE_URL") or wandb.Settings().base_url
            check_service_answers(service, "tracker=wandb (online)",
                                  "record offline (tracker.mode=offline, then wandb sync) or train with tracker=none")
        run_id = run.previous_id
        # W&B's own environment variables win over dqn-cli's defaults (an explicit tracker.* key wins over both).
        environ = os.environ.get
        self.run = wandb.init(project=cfg.project or environ("WANDB_PROJECT") or "dqn-cli", entity=cfg.entity,
                              mode=cfg.mode, name=environ("WANDB_NAME") or run.name,
                              group=environ("WANDB_RUN_GROUP") or run.group, config=run.params,
                              dir=environ("WANDB_DIR") or str(run.run_dir), id=run_id,
                              resume="allow" if run_id else None, reinit="create_new")
        self.run_id = self.run.id

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.run.log({tag: float(value)}, step=int(step))

    def final(self, metrics: Dict[str, float]) -> None:
        self.run.summary.update(metrics)

    def artifacts(self, config: Dict[str, Any], files: Sequence[Path]) -> None:
        for path in files:  # the config is the run's W&B config already
            self.run.save(str(path), base_path=str(path.parent), policy="now")

    def close(self) -> None:
        self.run.finish()
