"""MLflow: one MLflow run per dqn-train run, tagged with its sweep."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Sequence

from dqn_cli.config import MLflowTrackerConfig
from dqn_cli.trackers.base import TrackedRun, Tracker, check_service_answers, import_library

BATCH = 500  # metrics sent per call: one database write per point would slow a small run down


class MLflowTracker(Tracker):
    def __init__(self, cfg: MLflowTrackerConfig, run: TrackedRun):
        mlflow = import_library("mlflow", "mlflow")
        uri = cfg.tracking_uri or mlflow.get_tracking_uri()
        if uri.startswith(("http://", "https://")):
            check_service_answers(uri.rstrip("/") + "/health", f"tracker.tracking_uri={uri}",
                                  "start an MLflow server there (mlflow server --port <port>) or record locally: "
                                  "tracker.tracking_uri=sqlite:///mlflow.db")
        name, group, params, run_id = run.name, run.group, run.params, run.previous_id
        self.client, self.metric = mlflow.MlflowClient(tracking_uri=cfg.tracking_uri), mlflow.entities.Metric
        if run_id is None:
            experiment = self.client.get_experiment_by_name(cfg.experiment)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(cfg.experiment)
            name = self.unique(experiment_id, name)
            tags = {"mlflow.runName": name, "run_dir": str(run.run_dir), **({"sweep": group} if group else {})}
            run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
            params = [mlflow.entities.Param(key, str(value)) for key, value in params.items()]
            self.client.log_batch(run_id, params=params)  # set once: a resumed run keeps them
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id
        self.pending: list = []  # metrics not yet sent

    def unique(self, experiment_id: str, name: str) -> str:
        """The name, or 'name #N' when N-1 runs of the experiment already have it: one row per name."""
        escaped = name.replace("'", "\\'")
        taken = self.client.search_runs([experiment_id], f"attributes.run_name LIKE '{escaped}%'", max_results=1000)
        names = {found.info.run_name for found in taken}
        return next(candidate for candidate in (name, *(f"{name} #{n}" for n in range(2, len(names) + 3)))
                    if candidate not in names)

    def artifacts(self, config: Dict[str, Any], files: Sequence[Path]) -> None:
        self.client.log_dict(self.run_id, config, "config.yaml")
        for path in files:
            self.client.log_artifact(self.run_id, str(path))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.pending.append(self.metric(tag, float(value), int(time.time() * 1000), int(step)))
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.client.log_batch(self.run_id, metrics=self.pending)
            self.pending = []

    def final(self, metrics: Dict[str, float]) -> None:
        for key, value in metrics.items():
            self.scalar(key, value, 0)

    def close(self) -> None:
        self.flush()
        self.client.set_terminated(self.run_id)
