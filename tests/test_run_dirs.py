"""Run directories that never collide, resumes that never lie, stops that write what they have,
and reports that survive broken runs."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from conftest import TINY, only_run_dir, run_cli
from dqn_cli.checkpoint import RunDirLock, atomic_write_bytes, prune_periodic, remove_stale_temp_files
from dqn_cli.compose import claim_new_run_dir
from dqn_cli.errors import ConfigError, RunDirError, TrainingInterrupted
from conftest import run_until, start

SHORT = ["total_steps=1200", "learning_starts=100", "checkpoint.interval=300", "eval.interval=600",
         "eval.episodes=2", "eval.final_episodes=3", "log.progress=off", "log.train_interval=100", "env.num_envs=1"]


@pytest.fixture
def finished(workdir: Path) -> Path:
    result = run_cli("dqn-train", ["optimizer.lr=0.001", "gamma=0.9", *SHORT], workdir)
    assert result.returncode == 0, result.stderr
    return only_run_dir(workdir)


def resume(run_dir: Path, *args: str, cwd: Path, env=None) -> subprocess.CompletedProcess:
    return run_cli("dqn-train", [f"resume={run_dir}", *args], cwd, extra_env=env)


def tree(path: Path) -> dict:
    """Every file below `path` with its bytes, to show that a run was left as it was (but the lock
    file, which names the last process that held the run dir)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
            and p.name != ".lock"}


# run dirs and the lock ---------------------------------------------------------------------------

def test_a_new_run_dir_is_never_an_existing_one(tmp_path: Path):
    name = str(tmp_path / "runs" / "2026-01-01_00-00-00_cartpole_seed0")
    first = claim_new_run_dir(name)
    assert claim_new_run_dir(name) == first == name  # Hydra may ask twice in one process: one answer
    claim_new_run_dir.cache_clear()  # another process starting in the same second
    assert claim_new_run_dir(name) == name + "_2" and Path(name + "_2").is_dir()


def test_two_runs_started_together_get_their_own_dirs(workdir: Path):
    processes = [start(["seed=0", *TINY], workdir) for _ in range(2)]
    for process in processes:
        process.communicate(timeout=300)
        assert process.returncode == 0
    runs = sorted((workdir / "outputs" / "runs").iterdir())
    assert len(runs) == 2 and all((run / "summary.json").is_file() for run in runs)


def test_the_run_dir_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path: Path):
    with RunDirLock(tmp_path):
        with pytest.raises(RunDirError, match=f"is in use: process {os.getpid()} is training in it"):
            RunDirLock(tmp_path).__enter__()
    with RunDirLock(tmp_path):  # released on exit, and by the system when a holder dies
        pass


def test_a_live_run_refuses_a_resume_and_a_killed_ones_lock_is_taken_over(workdir: Path):
    process = start(["total_steps=200000", "checkpoint.interval=500", "log.progress=off"], workdir)
    run_until(process, lambda: bool(list((workdir / "outputs" / "runs").glob("*/checkpoints/step_*.pt"))), 120)
    run_dir = only_run_dir(workdir)
    refused = resume(run_dir, cwd=workdir)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"dqn-train: error: {run_dir} is in use: process {process.pid} is training in it; wait for it to end "
        "(or stop it) before resuming, or start a new run"]
    process.kill()
    process.wait()
    reached = max(int(p.stem.split("_")[1]) for p in run_dir.glob("checkpoints/step_*.pt"))
    taken_over = resume(run_dir, f"total_steps={reached + 500}", "eval.final_episodes=2", "log.progress=off",
                        cwd=workdir)
    assert taken_over.returncode == 0, taken_over.stderr


def test_sweep_jobs_with_the_same_overrides_do_not_share_a_run(workdir: Path):
    result = run_cli("dqn-train", ["-m", "seed=0,0", *TINY], workdir)
    assert result.returncode != 0 and "1 sweep job(s) failed" in result.stderr
    (job,) = [p for p in (workdir / "outputs" / "sweeps").glob("*/*") if p.is_dir()]
    assert "already holds a run" in (job / "error.txt").read_text()
    assert (job / "summary.json").is_file()  # the first job's results are kept


def test_json_files_hold_null_for_nan_and_say_where(tmp_path: Path):
    from dqn_cli.checkpoint import atomic_write_json

    atomic_write_json(tmp_path / "summary.json", {"final_eval": {"best": {"mean": float("nan"), "std": 1.0}},
                                                  "curve": [1.0, float("inf")]})
    text = (tmp_path / "summary.json").read_text()
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert data["final_eval"]["best"] == {"mean": None, "std": 1.0} and data["curve"] == [1.0, None]
    assert data["non_finite"]["final_eval.best.mean"] == "nan" and data["non_finite"]["curve.1"] == "inf"


@pytest.mark.parametrize("outputs, says", [("dangling link", "outputs is a link to"),
                                           ("file", "cannot create outputs/runs for the run dir")])
def test_an_outputs_folder_that_cannot_hold_runs_is_one_line(workdir: Path, outputs: str, says: str):
    if outputs == "file":
        (workdir / "outputs").write_text("")
    else:
        (workdir / "outputs").symlink_to(workdir / "missing")
    result = run_cli("dqn-train", SHORT, workdir)
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2 and says in line


def test_only_stale_temp_files_are_removed(tmp_path: Path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live, stale = tmp_path / f".step_1.pt.tmp{os.getpid()}", tmp_path / f".step_1.pt.tmp{dead.pid}"
    live.write_bytes(b"being written")
    stale.write_bytes(b"left by a kill")
    remove_stale_temp_files(tmp_path)
    assert live.exists() and not stale.exists()


def test_pruning_ignores_foreign_files_and_removes_orphan_replays(tmp_path: Path):
    for step in (100, 200, 300):
        (tmp_path / f"step_{step:012d}.pt").write_bytes(b"x")
        (tmp_path / f"replay_{step:012d}.npz").write_bytes(b"x")
    orphan = tmp_path / f"replay_{400:012d}.npz"  # killed between the replay write and the step write
    orphan.write_bytes(b"x")
    foreign = [tmp_path / "step_keep.pt", tmp_path / "step_1000 (copy).pt", tmp_path / "replay_notes.npz"]
    for path in foreign:
        path.write_bytes(b"mine")
    prune_periodic(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.glob("step_0*.pt")) == [f"step_{200:012d}.pt", f"step_{300:012d}.pt"]
    assert not orphan.exists() and not (tmp_path / f"replay_{100:012d}.npz").exists()
    assert all(path.exists() for path in foreign)


# resume ----------------------------------------------------------------------------------------

def test_resume_takes_the_config_from_the_checkpoint_not_from_overrides_yaml(finished: Path, workdir: Path):
    (finished / ".hydra" / "overrides.yaml").write_text("- [garbled\n")
    result = resume(finished, "total_steps=1500", "log.progress=off", "hydra.job.chdir=false", cwd=workdir)
    assert result.returncode == 0, result.stderr  # Hydra's own overrides are Hydra's, not the run's
    config = torch.load(finished / "checkpoints" / "last.pt", weights_only=True)["config"]
    assert config["optimizer"]["lr"] == 0.001 and config["gamma"] == 0.9 and config["total_steps"] == 1500


def test_resume_keeps_a_seed_from_the_environment_and_refuses_a_new_seed(workdir: Path):
    result = run_cli("dqn-train", ["seed=${oc.env:SEED}", *SHORT], workdir, extra_env={"SEED": "3"})
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(workdir)
    longer = resume(run_dir, "total_steps=1500", "log.progress=off", cwd=workdir, env={"SEED": "5"})
    assert longer.returncode == 0, longer.stderr
    assert json.loads((run_dir / "summary.json").read_text())["seed"] == 3
    changed = resume(run_dir, "total_steps=1800", "seed=4", cwd=workdir)
    assert changed.returncode == 2 and "resume: seed was 3 in the run being resumed, now 4" in changed.stderr


def test_resuming_a_finished_run_leaves_it_untouched(finished: Path, workdir: Path):
    before = tree(finished)
    result = resume(finished, cwd=workdir)
    assert result.returncode == 0
    assert result.stderr.strip().splitlines() == [
        f"dqn-train: {finished} already finished at step 1,200 (summary.json); left as it is. To train it "
        f"longer: dqn-train resume={finished} total_steps=<more than 1200>"]
    assert tree(finished) == before
    below = resume(finished, "total_steps=600", cwd=workdir)
    assert below.returncode == 2 and "total_steps=600 is below the step this run reached (1200)" in below.stderr
    assert tree(finished) == before


def test_a_larger_total_steps_extends_a_finished_run(finished: Path, workdir: Path):
    result = resume(finished, "total_steps=1800", "log.progress=off", cwd=workdir)
    assert result.returncode == 0, result.stderr
    summary = json.loads((finished / "summary.json").read_text())
    assert summary["steps"] == 1800 and summary["steps_per_second"] > 0


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_a_broken_replay_falls_back_to_the_previous_checkpoint_pair(finished: Path, workdir: Path, damage: str):
    newest = max((finished / "checkpoints").glob("replay_*.npz"))
    data = newest.read_bytes()
    newest.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "garbage": b"PK\x03\x04 not a zip"}[damage])
    result = resume(finished, "total_steps=1500", "log.progress=off", cwd=workdir)
    assert result.returncode == 0, result.stderr
    said = result.stdout + (finished / "train.log").read_text()  # the console and the run's own log
    assert f"replay {newest} is unreadable" in said and "trying the previous checkpoint" in said


def test_a_resume_changes_what_the_checkpoint_can_carry(finished: Path, workdir: Path):
    result = resume(finished, "total_steps=1500", "optimizer.lr=1e-30", "target=soft", cwd=workdir)
    assert result.returncode == 0, result.stderr
    at_resume = torch.load(finished / "checkpoints" / "step_000000001200.pt", weights_only=True)["online"]
    after = torch.load(finished / "checkpoints" / "last.pt", weights_only=True)
    assert after["counters"]["step"] == 1500 and after["config"]["optimizer"]["lr"] == 1e-30
    # Steps of lr 1e-30 move no weight by a visible amount; the saved lr (1e-3) would move every one.
    assert all(torch.allclose(after["online"][name], at_resume[name], rtol=0, atol=1e-12) for name in at_resume)


@pytest.mark.parametrize("change, says", [
    ("optimizer=sgd", "optimizer.name was 'adam' in the run being resumed, now 'sgd': the checkpoint holds that "
                      "optimizer's state"),
    ("buffer=prioritized", "buffer.name was 'uniform' in the run being resumed, now 'prioritized'"),
    ("network=dueling", "network.name was 'auto' in the run being resumed, now 'dueling'"),
])
def test_a_resume_refuses_what_the_checkpoint_cannot_carry_and_writes_nothing(finished: Path, workdir: Path,
                                                                              change: str, says: str):
    before = tree(finished)
    result = resume(finished, "total_steps=2400", change, cwd=workdir)
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and tree(finished) == before


def test_a_resume_on_another_env_names_the_env_not_a_setting_that_came_with_it():
    import dqn_cli
    from dqn_cli.config import check_resume_compatible, to_dict

    with pytest.raises(ConfigError, match=r"^resume: env.id was 'ALE/Pong-v5' in the run being resumed, now "
                                          r"'CartPole-v1'"):
        check_resume_compatible(to_dict(dqn_cli.compose_config(["env=pong"])), dqn_cli.compose_config([]))


def test_an_episode_budget_run_is_extended_with_its_own_exploration_settings(workdir: Path):
    first = run_cli("dqn-train", ["total_episodes=10", "exploration.unit=episode", *SHORT[1:]], workdir)
    assert first.returncode == 0, first.stderr
    run_dir = only_run_dir(workdir)
    result = resume(run_dir, "total_episodes=20", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert json.loads((run_dir / "summary.json").read_text())["episodes"] >= 20


def test_stray_files_in_checkpoints_break_nothing(finished: Path, workdir: Path):
    for name in ("step_keep.pt", "step_1000 (copy).pt"):
        (finished / "checkpoints" / name).write_bytes(b"a user's file")
    result = resume(finished, "total_steps=1800", "log.progress=off", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert (finished / "checkpoints" / "step_keep.pt").read_bytes() == b"a user's file"


def test_a_new_run_in_a_finished_runs_dir_is_refused_and_changes_nothing(finished: Path, workdir: Path):
    before = tree(finished)
    result = run_cli("dqn-train", [f"hydra.run.dir={finished}", "optimizer.lr=0.5", *SHORT], workdir)
    assert result.returncode == 2 and f"continue it with resume={finished}" in result.stderr
    assert tree(finished) == before


def test_a_refused_run_in_a_users_folder_leaves_only_the_users_files(workdir: Path):
    folder = workdir / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    result = run_cli("dqn-train", [f"hydra.run.dir={folder}", "optimizer.lr=-1", *SHORT], workdir)
    assert result.returncode == 2 and "optimizer.lr" in result.stderr
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("flags", [["--cfg", "job"], ["--resolve", "--cfg", "all"], ["-c", "hydra"], ["--info"]])
def test_print_only_modes_create_no_run_dir(workdir: Path, flags: list):
    result = run_cli("dqn-train", flags, workdir)
    assert result.returncode == 0 and not (workdir / "outputs").exists()


def test_a_refused_resume_leaves_nothing_behind(workdir: Path):
    folder = workdir / "not_a_run"
    folder.mkdir()
    result = resume(folder, cwd=workdir)
    assert result.returncode == 2 and list(folder.iterdir()) == []


@pytest.mark.parametrize("name", ["seed=0,total_steps=1200", "lr=1e-3 seed=0", "run é 'quoted'"])
def test_the_printed_resume_hint_runs_as_printed(finished: Path, workdir: Path, name: str):
    moved = finished.rename(finished.parent / name)  # a sweep job's dir, spaces, non-ASCII, quotes
    hint = str(TrainingInterrupted(1200, moved, "SIGTERM")).split("continue with: ")[1]
    result = subprocess.run(f"{hint} total_steps=1500", shell=True, cwd=workdir, capture_output=True, text=True,
                            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    assert json.loads((moved / "summary.json").read_text())["steps"] >= 1500


# signals ---------------------------------------------------------------------------------------

def test_a_stop_during_the_final_evaluation_writes_a_partial_summary(workdir: Path):
    process = start(["total_steps=1000", "learning_starts=100", "eval.final_episodes=100000",
                     "log.progress=off", "env.num_envs=1"], workdir)
    # The final evaluation says how far it got after 5 s: only then is the stop surely past training,
    # whose last step writes best.pt too (a stop there is an interrupted run, not a partial summary).
    run_until(process, lambda: any("final evaluation of best.pt:" in log.read_text()
                                   for log in (workdir / "outputs" / "runs").glob("*/train.log")), 120)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    run_dir = only_run_dir(workdir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["partial"] is True and summary["final_eval"]["best"]["partial"] is True
    assert summary["final_eval"]["best"]["episodes"] < 100000 and summary["solved"] is None
    assert "summary.json holds the final evaluation so far, marked partial" in stderr


def test_sighup_stops_like_sigterm(workdir: Path):
    process = start(["total_steps=200000", "log.progress=off"], workdir)
    run_until(process, lambda: bool(list((workdir / "outputs" / "runs").glob("*/events.out.tfevents.*"))), 120)
    process.send_signal(signal.SIGHUP)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 129 and "by SIGHUP; checkpoint written" in stderr
    assert list(only_run_dir(workdir).glob("checkpoints/step_*.pt"))


# messages that tell the truth ------------------------------------------------------------------

def test_divergence_before_any_checkpoint_says_there_is_none(workdir: Path):
    result = run_cli("dqn-train", ["optimizer.lr=1e30", *TINY], workdir)  # finite, but the weights overflow at once
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.endswith("no checkpoint had been written yet")


def test_a_full_disk_names_the_file(tmp_path: Path, monkeypatch):
    import errno

    from dqn_cli import checkpoint

    monkeypatch.setattr(checkpoint.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
    with pytest.raises(OSError) as caught:
        atomic_write_bytes(tmp_path / "summary.json", b"{}")
    assert caught.value.filename == str(tmp_path / "summary.json")


def test_a_closed_stdout_is_no_error(workdir: Path):
    process = start([*TINY], workdir)
    process.stdout.close()  # `dqn-train ... | head -c 0`
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0 and stderr.strip() == ""
    assert (only_run_dir(workdir) / "summary.json").is_file()


def test_a_tensorboard_writer_thread_error_prints_no_traceback(tmp_path: Path, capfd):
    from dqn_cli.tb import TensorBoardLogger

    logger = TensorBoardLogger(tmp_path)

    class _AsyncWriterThread(threading.Thread):  # what TensorBoard's writer thread is called
        def run(self):
            raise OSError(28, "No space left on device")

    thread = _AsyncWriterThread()
    thread.start()
    thread.join()
    logger.close()
    assert "Traceback" not in capfd.readouterr().err


def test_a_broken_env_module_is_one_line(workdir: Path, tmp_path: Path):
    (tmp_path / "broken_envs.py").write_text("raise RuntimeError('no licence key')\n")
    (tmp_path / "typo_envs.py").write_text("def register(:\n")
    for module, message in (("broken_envs", "failed while importing: RuntimeError: no licence key"),
                            ("typo_envs", "failed while importing: SyntaxError (line 1)")):
        result = run_cli("dqn-train", ["env=gym", "env.id=X-v0", f"env.import_module={module}", *TINY], workdir,
                         extra_env={"PYTHONPATH": str(tmp_path)})
        (line,) = result.stderr.strip().splitlines()
        assert result.returncode == 2 and message in line
    assert not (workdir / "outputs" / "runs").exists() or not list((workdir / "outputs" / "runs").iterdir())


SMALL_GRID = """
import gymnasium as gym, numpy as np
class Grid(gym.Env):
    observation_space = gym.spaces.Box(0, 1, (10, 10, 6), bool)  # MinAtar-like: 10x10, 6 channels
    action_space = gym.spaces.Discrete(3)
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed); self.t = 0; return self.observation_space.sample(), {}
    def step(self, action):
        self.t += 1; return self.observation_space.sample(), float(action == 1), self.t >= 20, False, {}
gym.register("Grid-v0", entry_point=Grid)
"""


def test_small_images_get_a_cnn_that_fits(workdir: Path, tmp_path: Path):
    (tmp_path / "grid_envs.py").write_text(SMALL_GRID)
    env = {"PYTHONPATH": str(tmp_path)}
    args = ["env=gym", "env.id=Grid-v0", "env.import_module=grid_envs", *TINY]
    result = run_cli("dqn-train", args, workdir, extra_env=env)
    assert result.returncode == 0, result.stderr
    refused = run_cli("dqn-train", [*args, "network=nature_cnn"], workdir, extra_env=env)
    assert refused.returncode == 2 and "use network=auto (a small CNN for small images)" in refused.stderr


# dqn-report ------------------------------------------------------------------------------------

def test_report_lists_broken_runs_and_still_writes(workdir: Path, tmp_path: Path):
    result = run_cli("dqn-train", ["-m", "seed=0,1,2", *TINY], workdir)
    assert result.returncode == 0, result.stderr
    (sweep,) = (workdir / "outputs" / "sweeps").iterdir()
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    (jobs[0] / "summary.json").write_text("{")  # truncated
    (jobs[1] / "summary.json").write_text("{}")
    overrides = jobs[2] / ".hydra" / "overrides.yaml"
    overrides.write_text(overrides.read_text().replace("seed=2", "seed=${oc.env:SEED}"))  # cannot resolve here
    report = run_cli("dqn-report", [str(sweep), "--out", str(tmp_path / "report")], workdir)
    assert report.returncode == 0, report.stderr
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert markdown.count("broken (summary.json unreadable") == 2 and "1 of 3" in markdown
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    unwritable = run_cli("dqn-report", [str(sweep), "--out", str(blocked / "report")], workdir)
    assert unwritable.returncode == 2 and len(unwritable.stderr.strip().splitlines()) == 1
    assert "cannot write the report to" in unwritable.stderr and "--out" in unwritable.stderr


def test_report_flags_a_seed_counted_twice(workdir: Path):
    for _ in range(2):
        assert run_cli("dqn-train", ["seed=0", *TINY], workdir).returncode == 0
    report = run_cli("dqn-report", [str(p) for p in (workdir / "outputs" / "runs").iterdir()], workdir)
    assert report.returncode == 0, report.stderr
    assert "seed(s) 0 ran more than once and count as independent seeds" in report.stdout + \
        (workdir / "report" / "report.md").read_text()


@pytest.mark.parametrize("overrides, suffix", [
    ([], ""),
    (["seed=3", "env=acrobot", "log.progress=off", "hydra.run.dir=x", "tracker=mlflow", "tracker.experiment=e"], ""),
    (["target=soft", "optimizer.lr=3e-4"], "_target-soft+optimizer.lr-3e-4"),
    (["network.hidden_sizes=[64,64]", "+variant=double"], "_network.hidden_sizes-64-64+variant-double"),
    (["env.make_kwargs.path=/tmp/a b", "env.id=x"], "_env.make_kwargs.path-tmp-a-b"),
])
def test_a_run_dir_name_says_what_the_command_line_changed(overrides, suffix):
    from dqn_cli.compose import run_changes

    assert run_changes(overrides) == suffix


def test_a_long_list_of_changes_is_cut_at_an_override_with_a_hash():
    from dqn_cli.compose import MAX_CHANGES_BYTES, run_changes

    many = [f"optimizer.lr=0.00{i}" for i in range(40)]
    name = run_changes(many)
    assert len(name.encode()) <= MAX_CHANGES_BYTES + 1 and name.startswith("_optimizer.lr-0.000+optimizer.lr-0.001+")
    assert re.fullmatch(r"_[A-Za-z0-9._:+-]*\+\.\.[0-9a-f]{8}", name) and run_changes(many[:-1]) != name


def test_a_run_dir_named_by_its_changes_resumes_without_quotes(tmp_path: Path):
    result = run_cli("dqn-train", ["target=soft", "network.hidden_sizes=[16,16]", "gamma=0.9", *SHORT], tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path)
    assert "_cartpole_seed0_target-soft+network.hidden_sizes-16-16+gamma-0.9+" in run_dir.name
    assert not set("=,[]") & set(run_dir.name)  # what Hydra would read as syntax
    extended = run_cli("dqn-train", [f"resume={run_dir.relative_to(tmp_path)}", "total_steps=1500", "log.progress=off"],
                       tmp_path)
    assert extended.returncode == 0, extended.stderr
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 1500

