"""Fault tests: kill -9 at random moments and resume; bad resume inputs; unwritable output."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import only_run_dir, run_cli, run_until, start
from dqn_cli import tb
from dqn_cli.report.runs import read_scalars

KILL_POINTS = 20
# A checkpoint (and its replay) every 100 steps: most kills land in or near a checkpoint write.
RUN = ["eval.stop_when_solved=false", "checkpoint.interval=100", "checkpoint.keep=2",
       "buffer.capacity=5000", "eval.interval=1000", "eval.episodes=2", "eval.final_episodes=5", "log.progress=off"]





def newest_step(run_dir_glob) -> int:
    return max((int(p.stem.split("_")[1]) for p in run_dir_glob()), default=-1)


@pytest.mark.slow  # trains, killed and resumed 20 times
def test_kill_9_at_random_moments_then_resume_finishes_consistently(workdir: Path):
    rng = random.Random(1234)
    checkpoints = lambda: list((workdir / "outputs" / "runs").glob("*/checkpoints/step_*.pt"))  # noqa: E731
    # A budget no machine reaches during the kills (a fast one trains past 30k steps in 20 random
    # waits); the last resume then sets one a little past the newest checkpoint and trains it all.
    kill_phase = ["total_steps=10000000"]
    process, run_dir, kills = start([*RUN, *kill_phase], workdir), None, 0
    while True:
        reached = newest_step(checkpoints)
        run_until(process, lambda: newest_step(checkpoints) > reached, timeout=120)  # training again
        run_dir = run_dir or only_run_dir(workdir)
        try:
            process.wait(timeout=rng.uniform(0.0, 0.5))  # a random moment: mid-step, mid-eval or mid-write
            raise AssertionError(f"the run ended by itself (exit {process.returncode}): {process.stderr.read()}")
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
        if kills == KILL_POINTS:
            break
        process = start([f"resume={run_dir}", *RUN, *kill_phase], workdir)
    total_steps = (newest_step(checkpoints) // 1600 + 2) * 1600  # whole rounds of the 16 envs
    process = start([f"resume={run_dir}", *RUN, f"total_steps={total_steps}"], workdir)
    process.wait(timeout=300)
    assert process.returncode == 0, process.stderr.read()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == total_steps
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert last["counters"]["step"] == total_steps and last["counters"]["episodes"] == summary["episodes"]
    torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert not list((run_dir / "checkpoints").glob(".*.tmp*"))  # no half-written file left
    steps_of = lambda pattern: {p.stem.split("_")[1] for p in (run_dir / "checkpoints").glob(pattern)}  # noqa: E731
    assert steps_of("replay_*.npz") == steps_of("step_*.pt")  # every replay has its checkpoint
    # every episode logged exactly once across the killed and resumed processes
    steps, _ = read_scalars(run_dir, tb.EPISODE_RETURN)
    assert len(steps) == summary["episodes"] and len(set(steps.tolist())) == len(steps)


def test_sigterm_checkpoints_and_says_how_to_resume(workdir: Path):
    process = start(["total_steps=200000", "log.progress=off"], workdir)
    run_until(process, lambda: bool(list((workdir / "outputs" / "runs").glob("*/events.out.tfevents.*"))), 120)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143
    run_dir = only_run_dir(workdir)
    assert f"checkpoint written; continue with: dqn-train resume={run_dir}" in stderr
    assert "Traceback" not in stderr and list((run_dir / "checkpoints").glob("step_*.pt"))


def test_resume_refuses_a_changed_network_naming_the_key(workdir: Path):
    assert run_cli("dqn-train", ["total_steps=600", "learning_starts=100", "eval.interval=300",
                                 "eval.final_episodes=2", "log.progress=off"], workdir).returncode == 0
    run_dir = only_run_dir(workdir)
    result = run_cli("dqn-train", [f"resume={run_dir}", "network.hidden_sizes=[64,64]"], workdir)
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("dqn-train: error: resume: network.hidden_sizes was [128, 128]")
    assert not (run_dir / ".hydra-resume").exists() or not list((run_dir / ".hydra-resume").iterdir())
    result = run_cli("dqn-train", [f"resume={run_dir}", "env=acrobot"], workdir)
    assert result.returncode != 0 and "resume: env.id was 'CartPole-v1'" in result.stderr


def test_resume_of_a_folder_that_is_no_run(workdir: Path):
    result = run_cli("dqn-train", [f"resume={workdir}"], workdir)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"dqn-train: error: resume={workdir}: not a dqn-train run dir (no checkpoints/ in it)"]
    typo = workdir / "outputs" / "runs" / "no-such-run"
    result = run_cli("dqn-train", [f"resume={typo}"], workdir)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"dqn-train: error: resume={typo}: no such run dir; pass the dir of an earlier run, e.g. "
        "resume=outputs/runs/<run>"]
    assert not typo.exists() and workdir.is_dir()  # nothing created, nothing removed
    (workdir / "run" / "checkpoints").mkdir(parents=True)  # a run's own checkpoints/ given instead of the run
    result = run_cli("dqn-train", [f"resume={workdir / 'run' / 'checkpoints'}"], workdir)
    assert result.stderr.strip().splitlines()[-1].endswith(f"; pass the run dir itself, resume={workdir / 'run'}")


@pytest.mark.parametrize("arg", ["resume=", "reproduce=", "resume= "])
def test_an_empty_run_dir_to_resume_or_reproduce_is_refused_not_taken_as_a_new_run(workdir: Path, arg: str):
    result = run_cli("dqn-train", [arg, "total_steps=100"], workdir)
    key = arg.split("=")[0]
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"dqn-train: error: {key}=: needs the dir of an earlier run, e.g. {key}=outputs/runs/<run>"]
    assert not (workdir / "outputs").exists() or not any((workdir / "outputs").rglob("*.*"))


def test_unwritable_output_folder_is_one_line(workdir: Path):
    blocker = workdir / "a_file"
    blocker.write_text("not a folder")
    result = run_cli("dqn-train", [f"hydra.run.dir={blocker}/run", "total_steps=100"], workdir)
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"dqn-train: error: cannot write {blocker}/run") and "writable folder" in line


def test_a_rerun_sweep_job_resumes_its_own_unfinished_run(workdir: Path):
    """What a requeued SLURM job does: the same job in the same dir continues from its checkpoints."""
    sweep = workdir / "sweep"
    args = ["-m", "seed=0", f"hydra.sweep.dir={sweep}", "total_steps=8000", "checkpoint.interval=500",
            "log.progress=off"]
    process = start(args, workdir)
    run_until(process, lambda: bool(list(sweep.glob("*/checkpoints/step_*.pt"))), timeout=120)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    (job,) = [p for p in sweep.iterdir() if p.is_dir() and "seed=0" in p.name.split(",")]
    assert not (job / "summary.json").exists()
    stopped_at = max(int(p.stem.split("_")[1]) for p in job.glob("checkpoints/step_*.pt"))
    assert 0 < stopped_at < 8000

    result = run_cli("dqn-train", args, workdir)
    assert result.returncode == 0, result.stderr
    assert "holds an unfinished run of this job: resuming it" in (job / "train.log").read_text()
    assert json.loads((job / "summary.json").read_text())["steps"] == 8000
    assert not (job / "error.txt").exists()
