"""Sweeps beyond one process: preset sweeps, Optuna, submitit (local executor) and Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from conftest import TINY, run_cli, run_until
from dqn_cli.runtime import usable_cores

REPO = Path(__file__).resolve().parents[1]


def sweep_dir(workdir: Path) -> Path:
    (sweep,) = (workdir / "outputs" / "sweeps").iterdir()
    return sweep


def job_dirs(sweep: Path) -> list:
    return sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_one_word_seed_sweep(workdir: Path):
    result = run_cli("dqn-train", ["+sweep=seeds3", *TINY], workdir)
    assert result.returncode == 0, result.stderr
    sweep = sweep_dir(workdir)
    jobs = job_dirs(sweep)
    assert [j.name.split(",")[-2] for j in jobs] == ["seed=0", "seed=1", "seed=2"]
    assert all((j / "summary.json").is_file() for j in jobs) and (sweep / "report.md").is_file()


def test_hydra_mode_set_on_the_command_line_sweeps(workdir: Path):
    """A run without -m skips the composition Hydra makes to read hydra.mode, unless the command line can set it."""
    result = run_cli("dqn-train", ["hydra.mode=MULTIRUN", "seed=0,1", *TINY], workdir)
    assert result.returncode == 0, result.stderr
    assert [j.name.split(",")[-2] for j in job_dirs(sweep_dir(workdir))] == ["seed=0", "seed=1"]


def test_only_sweep_presets_set_hydra_mode():
    """What lets a plain run skip that composition: no other config file can set hydra.mode."""
    for path in (REPO / "conf").rglob("*.yaml"):
        if path.parent.name == "sweep" or path.parent.parent.name == "hydra":
            continue
        config = yaml.safe_load(path.read_text()) or {}
        hydra_keys = config.get("hydra") or {}
        defaults = [str(entry) for entry in config.get("defaults", [])]
        assert "mode" not in hydra_keys and not any("sweep" in entry for entry in defaults), path


def test_optuna_searches_the_articles_space_and_writes_best_params(workdir: Path):
    result = run_cli("dqn-train", ["+sweep=optuna_article", "hydra.sweeper.n_trials=3", *TINY], workdir)
    assert result.returncode == 0, result.stderr
    sweep = sweep_dir(workdir)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    params = best["best_params"]
    assert set(params) == {"optimizer.lr", "gamma", "batch_size", "target.interval"}
    assert 1e-5 <= params["optimizer.lr"] <= 1e-1 and 0.9 <= params["gamma"] <= 0.999
    assert params["batch_size"] in (32, 64, 128) and params["target.interval"] in (500, 1000, 2000)
    assert len(job_dirs(sweep)) == 3
    # the objective Optuna maximised is the best trial's final greedy score
    scores = [yaml.safe_load((j / "summary.json").read_text())["final_eval"]["best"]["mean"] for j in job_dirs(sweep)]
    assert best["best_value"] == max(scores)


def test_a_job_dir_name_fits_a_file_name_and_stays_unique():
    from dqn_cli.compose import job_dir_name

    assert job_dir_name("seed=0,target=soft", 3) == "seed=0,target=soft"
    long = ",".join(f"key{i}=välue{i}" for i in range(40))
    names = {job_dir_name(long, 0), job_dir_name(long.replace("välue39", "other"), 1)}
    assert len(names) == 2 and all(len(n.encode()) <= 255 and n.startswith(("0_key0=", "1_key0=")) for n in names)


def test_a_failed_optuna_trial_is_recorded_and_the_search_goes_on(workdir: Path):
    # batch_size=128 (one of the searched values) does not fit a 64-transition buffer: that trial fails.
    result = run_cli("dqn-train", ["+sweep=optuna_article", "hydra.sweeper.n_trials=4", "buffer.capacity=64", *TINY],
                     workdir)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    sweep = sweep_dir(workdir)
    failed = [j for j in job_dirs(sweep) if (j / "error.txt").is_file()]
    finished = [j for j in job_dirs(sweep) if (j / "summary.json").is_file()]
    assert len(failed) >= 1 and len(failed) + len(finished) == 4 and len(finished) >= 1
    assert all("batch_size=128" in j.name and "buffer.capacity" in (j / "error.txt").read_text() for j in failed)
    assert (sweep / "optimization_results.yaml").is_file() and (sweep / "report.md").is_file()
    assert f"{len(failed)} sweep job(s) failed" in result.stderr


def test_sigterm_to_a_joblib_sweep_stops_its_jobs_and_the_printed_command_continues_it(workdir: Path):
    process = subprocess.Popen([str(Path(sys.executable).parent / "dqn-train"), "-m", "seed=0,1,2",
                                "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "total_steps=50000",
                                "log.progress=off"], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        run_until(process, lambda: len(list(workdir.glob("outputs/sweeps/*/*/events.out.tfevents.*"))) >= 2, 120)
        process.send_signal(signal.SIGTERM)  # to the launching process only, as a scheduler or `kill` sends it
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143 and "dqn-train: sweep stopped by SIGTERM" in err
    jobs = job_dirs(sweep_dir(workdir))
    stopped = [j for j in jobs if "by SIGTERM; checkpoint written" in (j / "error.txt").read_text()]
    assert len(stopped) == 2 and all(list(j.glob("checkpoints/step_*.pt")) for j in stopped)
    assert "not started: the sweep was stopped by SIGTERM" in (jobs[2] / "error.txt").read_text()
    # No worker went on as an orphan: each job's dir is free, and the printed command finishes the sweep.
    command = err.split("Continue the sweep with: ")[1].strip()
    continued = subprocess.run(command, shell=True, cwd=workdir, capture_output=True, text=True,
                               env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert continued.returncode == 0, continued.stderr
    assert all((j / "summary.json").is_file() and not (j / "error.txt").exists() for j in jobs)
    assert all("resuming it" in (j / "train.log").read_text() for j in stopped)


def test_submitit_local_launcher_runs_jobs_and_reports(workdir: Path):
    result = run_cli("dqn-train", ["-m", "seed=0,1", "hydra/launcher=submitit_local", *TINY], workdir)
    assert result.returncode == 0, result.stderr
    sweep = sweep_dir(workdir)
    jobs = job_dirs(sweep)
    assert len(jobs) == 2 and all((j / "checkpoints" / "best.pt").is_file() for j in jobs)
    assert (sweep / "report.md").is_file() and (sweep / ".submitit").is_dir()


def test_ray_launcher_against_a_local_ray_instance(tmp_path: Path, workdir: Path):
    """hydra-ray-launcher pins cloudpickle 2.2, which joblib 1.6 refuses, so Ray gets its own
    virtual environment that sees this one's packages underneath."""
    venv = tmp_path / "ray-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "zz_dqn_cli.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n{REPO}\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "hydra-ray-launcher"], check=True,
                   capture_output=True, timeout=600)
    result = subprocess.run([str(python), "-m", "dqn_cli.cli", "-m", "seed=0,1", "hydra/launcher=ray", *TINY],
                            cwd=workdir, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    sweep = sweep_dir(workdir)
    assert len([j for j in job_dirs(sweep) if (j / "summary.json").is_file()]) == 2
    assert (sweep / "report.md").is_file()


def test_parallel_joblib_jobs_share_the_cores_that_one_run_takes(workdir: Path):
    """PQN's minibatches of 128 give the MinAtar network every core; two joblib jobs at once take
    half each, where every job on all cores would stall both."""
    pytest.importorskip("minatar", reason="the minatar extra is not installed")
    tiny_pqn = ["experiment=pqn_minatar", "total_steps=512", "env.num_envs=16", "algorithm.rollout_steps=16",
                "algorithm.minibatches=2", "eval.interval=0", "eval.final_episodes=1", "log.progress=off"]
    single = run_cli("dqn-train", tiny_pqn, workdir)
    assert single.returncode == 0, single.stderr
    (run,) = (workdir / "outputs" / "runs").iterdir()
    cores = usable_cores()
    assert json.loads((run / "summary.json").read_text())["provenance"]["torch_threads"] == cores

    sweep = run_cli("dqn-train", ["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *tiny_pqn],
                    workdir)
    assert sweep.returncode == 0, sweep.stderr
    threads = [json.loads((job / "summary.json").read_text())["provenance"]["torch_threads"]
               for job in job_dirs(sweep_dir(workdir))]
    assert threads == [max(1, cores // 2)] * 2
