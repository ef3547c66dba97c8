"""Shared helpers: run the installed console scripts the way a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest

BIN_DIR = Path(sys.executable).parent

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
