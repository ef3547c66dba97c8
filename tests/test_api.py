"""The Python API: dqn_cli.train(overrides) and dqn_cli.load(run_dir)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dqn_cli
from conftest import TINY
from dqn_cli.config import TrainConfig
from dqn_cli.errors import ConfigError, RunDirError

API_RUN = [t for t in TINY if not t.startswith("log.")]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("api")
    cwd = os.getcwd()
    os.chdir(folder)  # runs land in ./outputs, as for the CLI
    try:
        return dqn_cli.train(API_RUN)
    finally:
        os.chdir(cwd)


def test_train_returns_the_summary_and_its_run_dir(trained: dict):
    run_dir = Path(trained["run_dir"])
    assert run_dir.parent.name == "runs" and "_cartpole_seed0_" in run_dir.name  # then what the overrides change
    assert json.loads((run_dir / "summary.json").read_text())["final_eval"] == trained["final_eval"]
    assert (run_dir / ".hydra" / "overrides.yaml").is_file()  # dqn-report reads it as for CLI runs


def test_load_predicts_one_action_or_a_batch(trained: dict):
    agent = dqn_cli.load(trained["run_dir"])
    assert isinstance(agent.config, TrainConfig) and agent.config.env.id == "CartPole-v1"
    obs = np.array([0.01, -0.02, 0.03, 0.0], dtype=np.float32)
    q = agent.q_values(obs)
    assert q.shape == (2,) and agent.predict(obs) == int(q.argmax()) and isinstance(agent.predict(obs), int)
    batch = np.stack([obs, -obs, obs * 2])
    assert agent.q_values(batch).shape == (3, 2)
    assert np.array_equal(agent.predict(batch), agent.q_values(batch).argmax(axis=1))
    explored = agent.predict(np.repeat(obs[None], 400, axis=0), epsilon=1.0, rng=np.random.default_rng(0))
    assert set(explored.tolist()) == {0, 1}


def test_evaluate_reproduces_the_runs_final_evaluation(trained: dict):
    for checkpoint in ("best", "last"):
        agent = dqn_cli.load(trained["run_dir"], checkpoint=checkpoint)
        result = agent.evaluate(episodes=trained["final_eval"][checkpoint]["episodes"])
        assert result["mean"] == pytest.approx(trained["final_eval"][checkpoint]["mean"])
        assert len(result["returns"]) == trained["final_eval"][checkpoint]["episodes"]
    path = Path(trained["run_dir"]) / "checkpoints" / "last.pt"
    assert dqn_cli.load(trained["run_dir"], checkpoint=path).step == trained["steps"]


def test_evaluate_with_a_seed_and_a_video(trained: dict, tmp_path: Path):
    agent = dqn_cli.load(trained["run_dir"])
    result = agent.evaluate(episodes=2, seed=123, video=tmp_path / "play.mp4")
    assert result["first_seed"] == 123 and (tmp_path / "play.mp4").stat().st_size > 0


def test_errors_raise_with_the_clis_one_line(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^gamma=2.0 is out of range; allowed: 0 <= gamma <= 1$"):
        dqn_cli.train(["gamma=2"])
    with pytest.raises(ConfigError, match=r"^optimizer.lrr is not a setting"):
        dqn_cli.train(["optimizer.lrr=1"])
    with pytest.raises(ConfigError, match=r"^env=null: the env group needs an option; choose one of: acrobot"):
        dqn_cli.train(["env=null"])
    with pytest.raises(ConfigError, match=r"^experiment_env=x: experiment_env is picked by experiment and env"):
        dqn_cli.train(["experiment_env=x"])
    with pytest.raises(ConfigError, match=r"^env.id=MountainCar-v0 under env=cartpole would train it with CartPole"):
        dqn_cli.train(["env.id=MountainCar-v0"])
    assert not (tmp_path / "outputs" / "runs").exists() or not list((tmp_path / "outputs" / "runs").iterdir())
    with pytest.raises(RunDirError, match="does not exist"):
        dqn_cli.load(tmp_path / "nope")


@pytest.mark.parametrize("obs, says", [
    (np.zeros(3), r"observation of shape \(3,\): this agent takes one of shape \(4,\) or a batch of shape \(n, 4\)"),
    (np.zeros(5), r"observation of shape \(5,\)"),
    (0.0, r"observation of shape \(\)"),
    (np.zeros((2, 2)), r"observation of shape \(2, 2\)"),
    (np.array([0.0, np.nan, 0.0, 0.0]), "observation holds NaN or inf"),
])
def test_predict_names_the_shape_it_takes_and_refuses_nan(trained: dict, obs, says: str):
    agent = dqn_cli.load(trained["run_dir"])
    with pytest.raises(ValueError, match=says):
        agent.predict(obs)


def test_bad_api_arguments_are_one_line(trained: dict):
    agent = dqn_cli.load(trained["run_dir"])
    assert repr(agent).startswith("TrainedAgent(CartPole-v1, dqn, step ")
    obs = np.zeros(4, dtype=np.float32)
    for epsilon in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=f"epsilon={epsilon}: expected a probability from 0 to 1"):
            agent.predict(obs, epsilon=epsilon)
    for episodes in (0, -1, 2.5):
        with pytest.raises(ValueError, match=f"episodes={episodes}: episodes must be an integer >= 1"):
            agent.evaluate(episodes=episodes)
    with pytest.raises(ValueError, match="seed=-5: expected None"):
        agent.evaluate(seed=-5)
    with pytest.raises(ConfigError, match="device='tpu' is not a device; use cpu, cuda, cuda:N or auto"):
        dqn_cli.load(trained["run_dir"], device="tpu")


def test_two_calls_in_the_same_second_get_their_own_run_dirs(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from dqn_cli import compose

    fixed_name = str(tmp_path / "outputs" / "runs" / "same_second")
    monkeypatch.setattr(compose, "_run_dir", lambda resume, fresh: compose.claim_new_run_dir(fixed_name))
    short = [*API_RUN, "total_steps=300", "learning_starts=100", "eval.final_episodes=2"]
    first, second = dqn_cli.train(short), dqn_cli.train(short)
    assert first["run_dir"] != second["run_dir"]
    assert all((Path(run["run_dir"]) / "summary.json").is_file() for run in (first, second))


def test_a_run_dir_that_holds_a_run_is_refused(trained: dict):
    before = (Path(trained["run_dir"]) / ".hydra" / "config.yaml").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run .* continue it with resume="):
        dqn_cli.train([f"hydra.run.dir={trained['run_dir']}", "optimizer.lr=0.5"])
    assert (Path(trained["run_dir"]) / ".hydra" / "config.yaml").read_bytes() == before


@pytest.mark.parametrize("overrides, says", [
    ("total_steps=100", r"must be a list of strings, e.g. train\(\['total_steps=100'\]\)"),
    (["-m"], "'-m' is a dqn-train flag; the API takes key=value overrides only"),
    (["--cfg", "job"], "'--cfg' is a dqn-train flag"),
    (["+sweep=seeds3"], "asks for a sweep; train\\(\\) runs one run"),
    (["seed=0,1,2"], "asks for a sweep"),
    (["seed=range(3)"], None),
    (["hydra.run.dir="], "hydra.run.dir= needs a folder"),
])
def test_what_the_api_cannot_run_is_refused_in_one_line(tmp_path: Path, monkeypatch, overrides, says):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=says) if says else pytest.raises(ConfigError):
        dqn_cli.train(overrides)
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("*.yaml"))


def test_configs_composed_in_two_threads_at_once(tmp_path: Path):
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        configs = list(pool.map(dqn_cli.compose_config, [["gamma=0.5"], ["gamma=0.7"]] * 3))
    assert [c.gamma for c in configs] == [0.5, 0.7] * 3


def test_importing_dqn_cli_loads_nothing_heavy():
    code = "import sys, dqn_cli; print(sorted(m for m in ('torch', 'gymnasium', 'hydra') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("progress, talks", [("lines", True), ("off", False)])
def test_train_talks_without_the_caller_configuring_logging(tmp_path: Path, progress: str, talks: bool):
    """A script or a notebook that set up no logging still sees each evaluation and the result line."""
    overrides = [o for o in TINY if not o.startswith("log.progress")] + [f"log.progress={progress}"]
    code = f"import dqn_cli; dqn_cli.train({overrides!r})"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    said = result.stderr
    assert ("eval @ 300:" in said and "run dir: " in said and "greedy episodes" in said) is talks
    assert talks or said == ""


@pytest.mark.parametrize("overrides, said", [
    (["total_steps=5000"], "total_steps=5,000 is not a multiple of 16 (one step of the 16 envs): the run trains 5,008 "
                           "steps"),
    (["experiment=pqn_cartpole", "total_steps=5000"], "(one rollout: "),
    (["total_steps=4992"], None),
])
def test_a_budget_rounded_up_is_said_at_the_start(caplog, overrides, said):
    from dqn_cli.run.assembly import warn_about_settings

    with caplog.at_level("INFO", logger="dqn_cli"):
        warn_about_settings(dqn_cli.compose_config(overrides))
    notes = [r.getMessage() for r in caplog.records if "is not a multiple of" in r.getMessage()]
    assert (said is None and not notes) or (len(notes) == 1 and said in notes[0])
