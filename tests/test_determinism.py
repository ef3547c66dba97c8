"""Same seed + same machine = same numbers; a different seed gives different ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from dqn_cli import tb
from dqn_cli.report.runs import read_scalars
from dqn_cli.run.train import train
from conftest import TIMING_KEYS, tiny_config

pytestmark = pytest.mark.slow  # whole training runs, compared bit for bit

LEARNING_TAGS = [t for t in tb.RUN_SCALAR_TAGS if t != tb.STEPS_PER_SECOND]


def run(tmp_path: Path, name: str, seed: int):
    from dqn_cli.config import EnvConfig, EvalConfig, LogConfig

    cfg = tiny_config(env=EnvConfig(id="CartPole-v1"), seed=seed, total_steps=1500, learning_starts=200,
                      eval=EvalConfig(interval=500, episodes=2, final_episodes=3), log=LogConfig(progress="off",
                                                                                                   train_interval=100))
    run_dir = tmp_path / name
    summary = train(cfg, run_dir)
    numbers = {k: v for k, v in summary.items() if k not in TIMING_KEYS}
    scalars = {tag: [v.tolist() for v in read_scalars(run_dir, tag)] for tag in LEARNING_TAGS}
    scalars.update({tag: [v.tolist() for v in read_scalars(run_dir, tag)] for tag in tb.FINAL_TAGS})
    return numbers, scalars


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("determinism")
    return run(folder, "a", seed=3), run(folder, "b", seed=3), run(folder, "c", seed=4)


def test_same_seed_gives_identical_summary_and_tensorboard_scalars(runs):
    (summary_a, scalars_a), (summary_b, scalars_b), _ = runs
    assert summary_a == summary_b
    assert all(len(scalars_a[tag][0]) for tag in (*LEARNING_TAGS, *tb.FINAL_TAGS))  # every tag has points
    assert scalars_a == scalars_b


def test_different_seed_gives_different_numbers(runs):
    (summary_a, scalars_a), _, (summary_c, scalars_c) = runs
    assert summary_a["final_eval"] != summary_c["final_eval"]
    assert scalars_a[tb.EPISODE_RETURN] != scalars_c[tb.EPISODE_RETURN]
    assert scalars_a[tb.TD_LOSS] != scalars_c[tb.TD_LOSS]
