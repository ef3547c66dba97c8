"""MLflow: one MLflow run per dqn-train run, tagged with its sweep."""

from __future__ import annotations

import time
from typing import Dict

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
            tags = {"mlflow.runName": name, **({"sweep": group} if group else {})}
            run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
            params = [mlflow.entities.Param(key, str(value)) for key, value in params.items()]
            self.client.log_batch(run_id, params=params)  # set once: a resumed run keeps them
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id
        self.pending: list = []  # metrics not yet sent

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
