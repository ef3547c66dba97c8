"""MLflow: one MLflow run per dqn-train run, tagged with its sweep."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Dict

from dqn_cli.config import MLflowTrackerConfig
from dqn_cli.errors import ConfigError
from dqn_cli.trackers.base import TrackedRun, Tracker, import_library

BATCH = 500  # metrics sent per call: one database write per point would slow a small run down


def check_server_answers(uri: str) -> None:
    """An http(s) tracking URI where no server listens costs minutes of MLflow's retries before it
    fails: ask once, in seconds."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10).close()
    except urllib.error.HTTPError:
        return  # something answers; MLflow says what if it is not a tracking server
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ConfigError(f"tracker.tracking_uri={uri}: no MLflow server answers there ({reason}); start one "
                          "(mlflow server --port <port>) or record locally: tracker.tracking_uri=sqlite:///mlflow.db") \
            from None


class MLflowTracker(Tracker):
    def __init__(self, cfg: MLflowTrackerConfig, run: TrackedRun):
        mlflow = import_library("mlflow", "mlflow")
        uri = cfg.tracking_uri or mlflow.get_tracking_uri()
        check_server_answers(uri)
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
