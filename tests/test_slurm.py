"""Sweeps on a real SLURM cluster: a single-node cluster (slurmctld + slurmd + munged on this host)
started by tests/cluster/slurm.sh, jobs submitted through submitit's sbatch, a job requeued the way a
cluster preempts, and a failing job beside finishing ones. Needs root and apt-get the first time (the
script installs slurm-wlm and munge); where that cannot be, the tests skip and say why (-rs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY

pytestmark = pytest.mark.slurm
SCRIPT = Path(__file__).resolve().parent / "cluster" / "slurm.sh"
LAUNCHER = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(SCRIPT), "start", str(state)], capture_output=True, text=True, timeout=900)
    if started.returncode != 0:
        pytest.skip(f"no SLURM cluster here: {started.stderr.strip() or started.stdout.strip()}")
    env = {**os.environ, "SLURM_CONF": started.stdout.strip().split("=", 1)[1]}
    yield env
    subprocess.run(["bash", str(SCRIPT), "stop", str(state)], timeout=120, check=True)


def sweep(args, cwd: Path, env: dict, background: bool = False):
    command = [str(Path(sys.executable).parent / "dqn-train"), "-m", *LAUNCHER, *args]
    if background:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def jobs_of(workdir: Path) -> dict:
    (sweep_dir,) = (workdir / "outputs" / "sweeps").iterdir()
    return {job.name: job for job in sweep_dir.iterdir() if (job / ".hydra").is_dir()}


def test_a_sweep_runs_its_jobs_under_slurmd_and_reports(cluster, tmp_path: Path):
    result = sweep(["seed=0,1,2", *TINY], tmp_path, cluster)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    jobs = jobs_of(tmp_path)
    summaries = [json.loads((job / "summary.json").read_text()) for job in jobs.values()]
    assert sorted(s["seed"] for s in summaries) == [0, 1, 2]
    slurm_ids = {s["provenance"]["slurm_job_id"] for s in summaries}  # each ran as a SLURM job of its own
    assert len(slurm_ids) == 3 and all(i.split("_")[0].isdigit() for i in slurm_ids)
    sweep_dir = next(iter(jobs.values())).parent
    report = json.loads((sweep_dir / "report.json").read_text())
    assert report["configurations"][0]["seeds"] == 3


def test_a_requeued_job_resumes_and_ends_as_an_uninterrupted_run(cluster, tmp_path: Path):
    # The defaults over their whole 50k-step budget: the job runs long enough after its first checkpoint
    # for the test to catch it running on any machine.
    whole_budget = ["eval.stop_when_solved=false", "log.progress=off"]
    straight = subprocess.run([str(Path(sys.executable).parent / "dqn-train"), *whole_budget], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    (straight_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    workdir = tmp_path / "sweep"
    workdir.mkdir()
    process = sweep(["seed=0", *whole_budget], workdir, cluster, background=True)
    # The launcher asks SLURM about its job every second or two and says so (this cluster keeps no accounting):
    # each line is a moment to look for the job's first checkpoint, when it is preempted.
    for _ in process.stdout:
        if list(workdir.glob("outputs/sweeps/*/*/checkpoints/step_*.pt")):
            break
    running = subprocess.run(["squeue", "-h", "-o", "%i"], env=cluster, capture_output=True, text=True).stdout.split()
    assert len(running) == 1, f"expected the one job running after its first checkpoint, squeue says {running}"
    job_id = running[0]
    subprocess.run(["scontrol", "requeue", job_id], env=cluster, check=True)
    # SLURM holds a requeued job back for a while; let it start again now
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], env=cluster, check=False)
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out[-3000:]
    (job,) = jobs_of(workdir).values()
    log = (job / "train.log").read_text()
    assert f"SLURM job {job_id} at step" in log and "holds an unfinished run of this job: resuming it" in log
    resumed, uninterrupted = (json.loads((d / "summary.json").read_text()) for d in (job, straight_dir))
    assert resumed["provenance"]["slurm_restart_count"] == 1 and resumed["resumed_at_step"] > 0
    for key in ("steps", "episodes", "updates", "final_eval", "best_periodic_eval"):
        assert resumed[key] == uninterrupted[key], key  # bit-identical


def test_a_failing_job_is_reported_and_the_others_finish(cluster, tmp_path: Path):
    result = sweep(["optimizer.lr=0.001,-1", *TINY], tmp_path, cluster)
    assert result.returncode != 0 and "1 sweep job(s) failed: " in result.stderr
    jobs = jobs_of(tmp_path)
    failed = [job for job in jobs.values() if (job / "error.txt").is_file()]
    finished = [job for job in jobs.values() if (job / "summary.json").is_file()]
    assert len(failed) == 1 and "optimizer.lr=-1" in failed[0].name and "optimizer.lr=-1" in result.stderr
    assert "out of range" in (failed[0] / "error.txt").read_text() and len(finished) == 1
