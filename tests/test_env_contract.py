"""Third-party envs that break gymnasium's contract (dqn_cli/envs/contract.py): one line naming the
env and what it did, a checkpoint at the last completed step, a resume command that works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import only_run_dir, run_cli, run_until

MISBEHAVING = """
import os
import gymnasium as gym
import numpy as np

class Misbehaving(gym.Env):
    '''Fine for 700 steps, then does what BAD says (in training; evaluation episodes are 50 steps).'''
    observation_space = gym.spaces.Box(-1, 1, (int(os.environ.get("OBS_SIZE", "4")),), np.float32)
    action_space = gym.spaces.Discrete(int(os.environ.get("ACTIONS", "2")), start=int(os.environ.get("START", "0")))

    def __init__(self):
        self.steps = 0

    def close(self):
        if os.environ.get("BAD") == "close":
            raise RuntimeError("cannot release the simulator")

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None and seed >= 1_000_000 and os.environ.get("MARKER"):  # an evaluation episode
            open(os.environ["MARKER"], "w").close()
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.steps += 1
        obs, reward, mode = np.zeros(4, np.float32), 1.0, os.environ.get("BAD", "")
        if self.steps > 700:
            if mode == "raise": raise RuntimeError("simulator exploded")
            if mode == "shape": obs = np.zeros(5, np.float32)
            if mode == "dtype": obs = np.array(["a"] * 4)
            if mode == "none": reward = None
            if mode == "array": reward = np.ones(2)
            if mode == "nan": reward = float("nan")
            if mode == "inf": reward = float("inf")
            if mode == "obs_nan": obs[0] = np.nan
            if mode == "info": return obs, reward, False, False, None
        endless = mode == "endless"
        return obs, reward, False, not endless and self.steps % 50 == 0, {}

gym.register("Misbehaving-v0", entry_point=Misbehaving)
"""

RUN = ["env=gym", "env.id=Misbehaving-v0", "env.import_module=misbehaving", "total_steps=1500", "learning_starts=100",
       "env.num_envs=1", "log.progress=off", "eval.episodes=2", "eval.final_episodes=2"]


@pytest.fixture
def env_module(tmp_path: Path) -> Path:
    (tmp_path / "misbehaving.py").write_text(MISBEHAVING)
    return tmp_path


def train(workdir: Path, env_module: Path, bad: str, *args: str, **env) -> subprocess.CompletedProcess:
    return run_cli("dqn-train", [*RUN, *args], workdir, extra_env={"PYTHONPATH": str(env_module), "BAD": bad, **env})


@pytest.mark.parametrize("bad, says", [
    ("raise", "step(): raised RuntimeError: simulator exploded"),
    ("shape", "step(): returned an observation of shape (5,); its observation_space has shape (4,)"),
    ("dtype", "step(): returned an observation of dtype <U1; expected numbers (float32)"),
    ("none", "step(): returned a reward of None (NoneType); expected one finite number"),
    ("array", "step(): returned a reward of array([1., 1.]) (ndarray); expected one finite number"),
    ("nan", "step(): returned a reward of nan"),
    ("inf", "step(): returned a reward of inf"),
    ("obs_nan", "step(): returned an observation holding NaN or inf"),
    ("info", "step(): returned info of type NoneType; expected a dict"),
])
def test_a_misbehaving_env_is_one_line_with_a_checkpoint_and_the_resume_command(workdir: Path, env_module: Path,
                                                                                 bad: str, says: str):
    result = train(workdir, env_module, bad)
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2 and line.startswith(f"dqn-train: error: env 'Misbehaving-v0' {says}; fix the env")
    run_dir = only_run_dir(workdir)
    assert "(at step 700); checkpoint written; after fixing the env, continue with: dqn-train resume=" in line
    assert (run_dir / "checkpoints" / "step_000000000700.pt").is_file()
    assert says in (run_dir / "train.log").read_text()
    hint = line.split("continue with: ")[1]
    resumed = subprocess.run(f"{hint} total_steps=1500", shell=True, cwd=workdir, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(env_module), "BAD": "",
                                  "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert resumed.returncode == 0, resumed.stderr  # the env fixed, the printed command finishes the run
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 1500


def test_an_async_workers_env_error_is_the_same_one_line(workdir: Path, env_module: Path):
    result = train(workdir, env_module, "raise", "env.num_envs=2", "env.vectorization=async")
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "env 'Misbehaving-v0' step(): raised RuntimeError: simulator exploded" in line
    assert "checkpoint written" in line


@pytest.mark.parametrize("setting, says", [
    ({"START": "1", "ACTIONS": "3"}, "has actions Discrete(3, start=1); the Q-network's outputs are actions 0..2"),
    ({"OBS_SIZE": "0"}, "has observations of shape (0,): no values to learn from"),
])
def test_spaces_the_network_cannot_use_are_refused_up_front(workdir: Path, env_module: Path, setting,
                                                                      says: str):
    result = train(workdir, env_module, "", **setting)
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2 and says in line and not (workdir / "outputs").exists()


def sigterm_in_an_endless_evaluation(workdir: Path, env_module: Path, tmp_path: Path, *args: str) -> tuple:
    """dqn-train on an env whose evaluation episodes never end, sent SIGTERM once one has started."""
    marker = tmp_path / "evaluating"
    process = subprocess.Popen([str(Path(sys.executable).parent / "dqn-train"), *RUN, *args], cwd=workdir,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(env_module), "BAD": "endless",
                                    "MARKER": str(marker)})
    try:
        run_until(process, marker.exists, 120)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    return process, out, err


def test_a_signal_during_an_endless_evaluation_checkpoints_and_exits_143(workdir: Path, env_module: Path,
                                                                         tmp_path: Path):
    process, out, err = sigterm_in_an_endless_evaluation(workdir, env_module, tmp_path, "eval.interval=300")
    assert process.returncode == 143 and "stopped at step 300 by SIGTERM; checkpoint written" in err
    assert "has no time limit" in out + err
    assert (only_run_dir(workdir) / "checkpoints" / "step_000000000300.pt").is_file()


def test_an_env_whose_close_raises_keeps_the_run_and_warns(workdir: Path, env_module: Path):
    result = train(workdir, env_module, "close")
    assert result.returncode == 0, result.stderr
    assert "close() raised RuntimeError: cannot release the simulator" in result.stdout + result.stderr
    assert (only_run_dir(workdir) / "summary.json").is_file()


def test_a_video_of_an_env_that_draws_no_frames_is_refused_before_playing(workdir: Path, env_module: Path):
    assert train(workdir, env_module, "").returncode == 0
    run_dir = only_run_dir(workdir)
    result = run_cli("dqn-eval", [f"run={run_dir}", "video=true"], workdir, extra_env={"PYTHONPATH": str(env_module)})
    line = result.stderr.strip().splitlines()[-1]  # after the warning that the env has no time limit
    assert result.returncode == 2 and "video: env 'Misbehaving-v0' does not draw RGB frames" in line
    assert "Traceback" not in result.stderr and "render_modes" not in result.stderr
    assert "greedy episode" not in result.stdout and not list(run_dir.glob("eval_*.json"))


def test_a_resume_cannot_move_to_another_dir(workdir: Path, env_module: Path):
    assert train(workdir, env_module, "").returncode == 0
    run_dir = only_run_dir(workdir)
    result = run_cli("dqn-train", [f"resume={run_dir}", f"hydra.run.dir={workdir / 'elsewhere'}"], workdir)
    assert result.returncode == 2 and "continues the run in its own dir; drop hydra.run.dir=" in result.stderr
    assert not (workdir / "elsewhere").exists()


def test_a_signal_during_the_end_of_training_evaluation_checkpoints_and_the_resume_plays_it(
        workdir: Path, env_module: Path, tmp_path: Path):
    process, _, err = sigterm_in_an_endless_evaluation(workdir, env_module, tmp_path, "total_steps=600",
                                                       "eval.interval=0")  # the evaluation at the end of training
    assert process.returncode == 143 and "stopped at step 600 by SIGTERM; checkpoint written" in err
    run_dir = only_run_dir(workdir)
    assert not (run_dir / "summary.json").exists() and not (run_dir / "checkpoints" / "best.pt").exists()
    resumed = run_cli("dqn-train", [f"resume={run_dir}"], workdir, extra_env={"PYTHONPATH": str(env_module)})
    assert resumed.returncode == 0, resumed.stderr  # the env no longer endless: the pending evaluation is played
    assert "eval @ 600:" in resumed.stdout and (run_dir / "summary.json").is_file()
