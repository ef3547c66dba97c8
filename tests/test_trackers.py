"""MLflow and Weights & Biases beside TensorBoard, in their local and offline modes (no network)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch

from conftest import TINY, only_run_dir, run_cli
from dqn_cli import tb

LOGGED = [*TINY, "log.train_interval=100"]


def mlflow_runs(db: Path) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("dqn-cli")
    return client, client.search_runs([experiment.experiment_id])


def test_mlflow_gets_the_scalars_config_and_final_metrics_and_a_resume_continues(workdir: Path, tmp_path: Path):
    db = tmp_path / "mlflow.db"
    args = ["tracker=mlflow", f"tracker.tracking_uri=sqlite:///{db}", "target=soft", *LOGGED]
    assert run_cli("dqn-train", args, workdir).returncode == 0
    client, (run,) = mlflow_runs(db)
    changed = " ".join(t for t in LOGGED if not t.startswith("log."))
    assert run.info.run_name == f"target=soft {changed} seed=0 CartPole-v1"  # what differs first
    assert run.data.tags["run_dir"] == str(only_run_dir(workdir))
    artifacts = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"config.yaml", "summary.json", "best.pt"}
    assert run.info.status == "FINISHED" and run.data.params["optimizer.lr"] == "0.0025"
    assert run.data.params["provenance.torch"] == torch.__version__  # what produced the run
    assert set(tb.ALL_SCALAR_TAGS) <= set(run.data.metrics)  # what TensorBoard gets, under the same tags
    summary = json.loads((only_run_dir(workdir) / "summary.json").read_text())
    assert run.data.metrics[tb.FINAL_BEST_MEAN] == pytest.approx(summary["final_eval"]["best"]["mean"])
    resumed = run_cli("dqn-train", [f"resume={only_run_dir(workdir)}", "total_steps=900", "log.progress=off"], workdir)
    assert resumed.returncode == 0, resumed.stderr
    client, (same,) = mlflow_runs(db)
    assert same.info.run_id == run.info.run_id
    assert max(m.step for m in client.get_metric_history(run.info.run_id, tb.EVAL_MEAN)) == 900


def test_mlflow_groups_a_sweeps_runs(workdir: Path, tmp_path: Path):
    db = tmp_path / "mlflow.db"
    result = run_cli("dqn-train", ["-m", "seed=0,1", "tracker=mlflow", f"tracker.tracking_uri=sqlite:///{db}", *TINY],
                     workdir)
    assert result.returncode == 0, result.stderr
    _, runs = mlflow_runs(db)
    (sweep,) = (workdir / "outputs" / "sweeps").iterdir()
    assert len(runs) == 2 and {r.data.tags["sweep"] for r in runs} == {sweep.name}


def test_wandb_offline_records_the_run_its_config_scalars_and_group(workdir: Path):
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    result = run_cli("dqn-train", ["-m", "seed=0", "tracker=wandb", *LOGGED], workdir, extra_env=env)
    assert result.returncode == 0, result.stderr
    (sweep,) = (workdir / "outputs" / "sweeps").iterdir()
    (job,) = [p for p in sweep.iterdir() if p.is_dir()]
    run_id = json.loads((job / "tracker.json").read_text())["wandb"]
    (record,) = job.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
    data = record.read_bytes()  # protobuf records: their strings are stored as written
    for text in ("seed=0 CartPole-v1", sweep.name, "optimizer.lr", tb.EPISODE_RETURN, tb.EVAL_MEAN, tb.FINAL_BEST_MEAN):
        assert text.encode() in data, text


def test_a_missing_tracker_library_or_an_unknown_tracker_is_one_line(workdir: Path, tmp_path: Path):
    blocked = tmp_path / "blocked"
    (blocked / "mlflow").mkdir(parents=True)
    (blocked / "mlflow" / "__init__.py").write_text("raise ImportError('No module named mlflow')\n")
    result = run_cli("dqn-train", ["tracker=mlflow", *TINY], workdir, extra_env={"PYTHONPATH": str(blocked)})
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        'dqn-train: error: tracker=mlflow needs the mlflow package, which is not installed; '
        'pip install "dqn-cli[mlflow]"']
    unknown = run_cli("dqn-train", ["tracker=neptune", *TINY], workdir)
    assert unknown.returncode == 2 and unknown.stderr.strip().splitlines() == [
        "dqn-train: error: tracker=neptune is not an option; choose one of: mlflow, none, wandb"]
    assert not (workdir / "outputs" / "runs").exists() or not list((workdir / "outputs" / "runs").iterdir())


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again: nothing listens there


def test_an_mlflow_store_that_cannot_be_used_is_one_line_in_seconds(workdir: Path, tmp_path: Path):
    not_a_folder = tmp_path / "a_file"
    not_a_folder.write_text("")
    port = free_loopback_port()
    for uri, says in ((f"http://127.0.0.1:{port}", f"tracker.tracking_uri=http://127.0.0.1:{port}: no answer from "
                                                   f"http://127.0.0.1:{port}/health"),
                      (f"sqlite:///{not_a_folder}/mlflow.db", "tracker=mlflow could not start: ")):
        result = run_cli("dqn-train", ["tracker=mlflow", f"tracker.tracking_uri={uri}", *TINY], workdir, timeout=60)
        (line,) = result.stderr.strip().splitlines()
        assert result.returncode == 2 and line.startswith("dqn-train: error: ") and says in line, line
    assert not (workdir / "outputs" / "runs").exists() or not list((workdir / "outputs" / "runs").iterdir())


def test_wandb_online_without_a_reachable_service_is_one_line_in_seconds(workdir: Path):
    port = free_loopback_port()
    result = run_cli("dqn-train", ["tracker=wandb", "tracker.mode=online", *TINY], workdir, timeout=60,
                     extra_env={"WANDB_BASE_URL": f"http://127.0.0.1:{port}", "WANDB_API_KEY": "x" * 40})
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "tracker=wandb (online): no answer from http://127.0.0.1:" in line
    assert "tracker.mode=offline" in line
    assert not (workdir / "outputs" / "runs").exists() or not list((workdir / "outputs" / "runs").iterdir())


def test_wandb_follows_its_environment_variables(workdir: Path, tmp_path: Path):
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path / "wandb_files"),
           "WANDB_PROJECT": "my-project-x", "WANDB_NAME": "my-run-name-y", "WANDB_RUN_GROUP": "my-group-z"}
    result = run_cli("dqn-train", ["tracker=wandb", *TINY], workdir, extra_env=env)
    assert result.returncode == 0, result.stderr
    run_id = json.loads((only_run_dir(workdir) / "tracker.json").read_text())["wandb"]
    (record,) = (tmp_path / "wandb_files").glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
    assert not (only_run_dir(workdir) / "wandb").exists()
    data = record.read_bytes()  # protobuf records: their strings are stored as written
    for text in ("my-project-x", "my-run-name-y", "my-group-z"):
        assert text.encode() in data, text


def test_mlflow_names_repeated_runs_apart(workdir: Path, tmp_path: Path):
    db = tmp_path / "mlflow.db"
    for _ in range(3):
        assert run_cli("dqn-train", ["tracker=mlflow", f"tracker.tracking_uri=sqlite:///{db}", *TINY],
                       workdir).returncode == 0
    _, runs = mlflow_runs(db)
    changed = " ".join(t for t in TINY if not t.startswith("log."))
    assert sorted(r.info.run_name for r in runs) == [f"{changed} seed=0 CartPole-v1{n}" for n in ("", " #2", " #3")]


def test_the_mlflow_ui_serves_a_run_with_its_artifacts(workdir: Path, tmp_path: Path):
    """`mlflow ui` (the mlflow-ui extra) on a loopback port: its page loads, and the API its run page
    reads answers with the run, its run-dir tag and its artifacts."""
    import importlib.util
    import subprocess
    import sys
    import urllib.request

    mlflow_cli = Path(sys.executable).parent / "mlflow"
    if not mlflow_cli.exists() or importlib.util.find_spec("flask") is None:  # mlflow-skinny only
        pytest.skip("the mlflow-ui extra is not installed (pip install \"dqn-cli[mlflow-ui]\")")
    db = tmp_path / "mlflow.db"
    assert run_cli("dqn-train", ["tracker=mlflow", f"tracker.tracking_uri=sqlite:///{db}", *TINY], workdir).returncode == 0
    _, (run,) = mlflow_runs(db)
    for _ in range(2):  # a free port found here can be taken before the server binds it: then once more
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen([str(mlflow_cli), "ui", "--backend-store-uri", f"sqlite:///{db}", "--host",
                                   "127.0.0.1", "--port", str(port), "--workers", "1"], cwd=workdir,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = []
        for line in server.stdout:  # the server says when its worker is ready
            output.append(line)
            if "Application startup complete" in line:
                break
        if server.poll() is None:
            break
    try:
        assert server.poll() is None, "mlflow ui ended before it was ready:\n" + "".join(output[-20:])
        base = f"http://127.0.0.1:{port}"
        page = urllib.request.urlopen(f"{base}/", timeout=30).read().decode()
        assert "<title>MLflow</title>" in page or "mlflow" in page.lower()
        got = json.loads(urllib.request.urlopen(f"{base}/ajax-api/2.0/mlflow/runs/get?run_id={run.info.run_id}",
                                                timeout=30).read())
        assert got["run"]["info"]["run_name"] == run.info.run_name
        assert {"key": "run_dir", "value": str(only_run_dir(workdir))} in got["run"]["data"]["tags"]
        listed = json.loads(urllib.request.urlopen(
            f"{base}/ajax-api/2.0/mlflow/artifacts/list?run_id={run.info.run_id}", timeout=30).read())
        assert {f["path"] for f in listed["files"]} == {"config.yaml", "summary.json", "best.pt"}
    finally:
        server.terminate()
        server.wait(timeout=60)

