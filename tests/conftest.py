"""Shared fixtures and helpers: tiny configs, a counting env, and running the installed console
scripts the way a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional

import gymnasium as gym
import numpy as np
import pytest

from dqn_cli.compose import register_schemas, typed_config
from dqn_cli.config import (CheckpointConfig, EnvConfig, EvalConfig, HardTargetConfig, LinearExplorationConfig,
                            LogConfig, MLPConfig, SGDConfig, SoftTargetConfig, TrainConfig, UniformBufferConfig)
from dqn_cli.hydra_errors import CONF_DIR

BIN_DIR = Path(sys.executable).parent

# compile=true builds its CPU kernels with a C++ compiler (torch.compile's, found as it finds it: $CXX or
# g++); CI installs g++ where it is missing (.ci/run).
needs_cpp_compiler = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None,
                                        reason="no C++ compiler here (g++, or $CXX) for compile=true's CPU kernels")

# A few hundred steps: enough to exercise every part of the loop in a couple of seconds.
# One env, so step counts are exact (CartPole's 16 default envs end a budget at a multiple of 16).
TINY = ["total_steps=600", "learning_starts=100", "eval.interval=300", "eval.episodes=2",
        "eval.final_episodes=3", "log.progress=off", "log.train_interval=100", "env.num_envs=1"]


def run_cli(program: str, args: List[str], cwd: Path, timeout: float = 300,
            extra_env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([str(BIN_DIR / program), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An unrelated folder to run from (runs land in ./outputs under it)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def only_run_dir(workdir: Path) -> Path:
    runs = sorted((workdir / "outputs" / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


class CountingEnv(gym.Env):
    """obs = [t]; action 1 at t == 2 terminates at t == 3; otherwise a 4-step time limit truncates."""

    observation_space = gym.spaces.Box(0, 10, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        terminated = self.t == 2 and action == 1
        self.t += 1
        return np.array([self.t], np.float32), 1.0, bool(terminated), False, {}


gym.register("CountingEnv-v0", entry_point=CountingEnv, max_episode_steps=4)


def tiny_config(**overrides) -> TrainConfig:
    """A TrainConfig for the core's train() on CountingEnv: 60 steps, updates from step 20."""
    cfg = TrainConfig(
        env=EnvConfig(id="CountingEnv-v0", num_envs=1), network=MLPConfig(hidden_sizes=[8]),
        buffer=UniformBufferConfig(capacity=1000), target=HardTargetConfig(interval=7),
        optimizer=SGDConfig(lr=0.01), exploration=LinearExplorationConfig(),
        total_steps=60, learning_starts=20, batch_size=4, train_freq=3, gradient_steps=2,
        eval=EvalConfig(interval=0, episodes=1, final_episodes=1), log=LogConfig(progress="off"),
    )
    return replace(cfg, **overrides)


def agent_config(**settings) -> TrainConfig:
    """What DQNAgent reads of a TrainConfig (optimizer, target, gamma, loss, double_q, ...), nothing else."""
    settings.setdefault("optimizer", SGDConfig(lr=0.1))
    settings.setdefault("target", HardTargetConfig())
    settings.setdefault("gamma", 0.9)
    return TrainConfig(**settings)


# Exact-resume comparisons: these summary.json entries are times, which differ between any two runs.
TIMING_KEYS = {"startup_s", "wall_time_s", "train_time_s", "periodic_eval_time_s", "final_eval_time_s",
               "steps_per_second", "total_wall_time_s", "resumed_at_step",
               "provenance"}  # its start time, and a resumed run's own


def scores(summary: dict) -> dict:
    """summary.json without its times: what two runs of the same config must share bit for bit."""
    return {k: v for k, v in summary.items() if k not in TIMING_KEYS}


N = 900  # the step an interrupted CartPole run stops at, half its budget


def cartpole_config(**overrides) -> TrainConfig:
    """Two CartPoles, 2 * N steps, evaluations and checkpoints every 300: for resume comparisons."""
    cfg = tiny_config(env=EnvConfig(id="CartPole-v1", num_envs=2), total_steps=2 * N, learning_starts=200,
                      target=SoftTargetConfig(tau=0.05, interval=2),
                      exploration=LinearExplorationConfig(fraction=0.5),
                      eval=EvalConfig(interval=300, episodes=2, final_episodes=3),
                      checkpoint=CheckpointConfig(interval=300, keep=2),
                      log=LogConfig(progress="off", train_interval=100))
    return replace(cfg, **overrides)


def compose_typed(overrides: List[str]) -> TrainConfig:
    """The typed config `dqn-train <overrides>` composes to."""
    from hydra import compose, initialize_config_dir

    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return typed_config(cfg)


def start(args, cwd: Path) -> subprocess.Popen:
    """dqn-train started in the background, its output piped."""
    return subprocess.Popen([str(BIN_DIR / "dqn-train"), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_until(process: subprocess.Popen, condition, timeout: float) -> None:
    """Let the process run until `condition()` holds (checked every 0.1 s) or it exits."""
    for _ in range(int(timeout / 0.1)):
        if condition():
            return
        try:
            process.wait(timeout=0.1)
            return
        except subprocess.TimeoutExpired:
            pass
    raise AssertionError("condition not reached in time")


def assert_same_step(a: tuple, b: tuple) -> None:
    """Two vector envs' step results (obs, rewards, terminated, truncated, info) agree bit for bit."""
    for x, y in zip(a[:4], b[:4]):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    for i in np.flatnonzero(a[2] | a[3]):
        assert np.array_equal(a[4]["final_obs"][i], b[4]["final_obs"][i])
