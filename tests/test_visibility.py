"""What a researcher sees while a run trains: evaluations and warnings on the console and in
train.log, evaluation defaults that keep image games cheap, honest speed in summary.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from conftest import TINY, only_run_dir, run_cli
from dqn_cli.compose import register_schemas, typed_config
from dqn_cli.config import EnvConfig, EvalConfig
from dqn_cli.hydra_errors import CONF_DIR
from dqn_cli.run.evaluator import EvaluationProgress


def tiny(*changes: str) -> list:
    """TINY with some of its keys set otherwise."""
    keys = {c.split("=", 1)[0] for c in changes}
    return [t for t in TINY if t.split("=", 1)[0] not in keys] + list(changes)


def compose(overrides):
    from hydra import compose as hydra_compose, initialize_config_dir

    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return typed_config(hydra_compose(config_name="config", overrides=overrides))


def test_every_evaluation_and_the_result_reach_the_console_and_train_log(workdir: Path):
    result = run_cli("dqn-train", tiny("learning_starts=700"), workdir)
    assert result.returncode == 0, result.stderr
    train_log = (only_run_dir(workdir) / "train.log").read_text()
    for text in (result.stdout, train_log):
        assert "eval @ 300: " in text and "eval @ 600: " in text and "over 2 episodes" in text
        assert "(new best)" in text and f"run dir: {only_run_dir(workdir)}" in text
        assert "learning_starts (700) >= total_steps (600): no update will happen" in text


def test_a_long_evaluation_says_how_far_it_got(caplog):
    progress = EvaluationProgress("final evaluation of best.pt", every_s=0.0)
    with caplog.at_level(logging.INFO, logger="dqn_cli"):
        progress(40, 100)
    assert "final evaluation of best.pt: 40/100 episodes" in caplog.text


@pytest.mark.parametrize("overrides,expected", [
    ([], (1_000, 10, 100)),
    (["env=pong"], (0, 3, 10)),  # a short Atari run evaluates only at its end, on few games
    (["env=pong", "total_steps=1000000"], (50_000, 3, 10)),
    (["experiment=nature_atari"], (250_000, 10, 30)),  # explicit values stay
    (["env=pong", "eval.final_episodes=30"], (0, 3, 30)),
])
def test_evaluation_defaults_fit_the_env_and_the_budget(overrides, expected):
    cfg = compose(overrides)
    assert (cfg.eval.interval, cfg.eval.episodes, cfg.eval.final_episodes) == expected


def test_eval_interval_beyond_the_budget_is_warned_about(workdir: Path):
    result = run_cli("dqn-train", tiny("eval.interval=5000"), workdir)
    assert result.returncode == 0, result.stderr
    assert "eval.interval (5,000) > total_steps (600)" in (only_run_dir(workdir) / "train.log").read_text()


def test_summary_speed_is_training_alone(workdir: Path):
    assert run_cli("dqn-train", TINY, workdir).returncode == 0
    summary = json.loads((only_run_dir(workdir) / "summary.json").read_text())
    training = summary["train_time_s"] - summary["periodic_eval_time_s"]
    assert summary["steps_per_second"] == pytest.approx(summary["steps"] / training, rel=0.01)
    assert summary["wall_time_s"] > summary["train_time_s"]


def test_eval_defaults_resolve_in_the_python_api_too():
    assert EvalConfig().resolved(atari=False, total_steps=50_000) == EvalConfig(1_000, 10, 100)
    assert EnvConfig().atari is None


def test_the_progress_line_shows_the_latest_evaluation(caplog):
    from dqn_cli.console import Progress

    progress = Progress(total=1000, mode="lines", interval_s=0.0)
    progress.last_eval = 212.4
    with caplog.at_level(logging.INFO, logger="dqn_cli"):
        progress.update(500, [10.0, 20.0], epsilon=0.1)
    assert "return(last 100) 15.0 | eval 212.4 | eps 0.100" in caplog.text
