"""reproduce=<run dir>: a new run of exactly the config a run dir holds, with its own provenance,
saying when the code or the libraries differ from the original's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import TINY, run_cli


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    """A run whose config is far from the defaults: a reproduction that composed the defaults would differ."""
    workdir = tmp_path_factory.mktemp("work")
    result = run_cli("dqn-train", ["target=soft", "seed=3", "optimizer.lr=0.002", "gamma=0.95", *TINY], workdir)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (workdir / "outputs" / "runs").iterdir()
    return run_dir


def reproduction(workdir: Path) -> Path:
    (run_dir,) = [p for p in (workdir / "outputs" / "runs").iterdir() if p.name.endswith("_reproduced")]
    return run_dir


def test_reproduce_trains_the_same_config_to_the_same_numbers_in_a_new_dir(original: Path, tmp_path: Path):
    result = run_cli("dqn-train", [f"reproduce={original}", "log.progress=off"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "with the code and libraries it ran with" in result.stdout + result.stderr
    new = reproduction(tmp_path)
    assert new.name.endswith("_reproduced") and "_cartpole_seed3_target-soft+" in new.name and new != original
    before, after = (json.loads((d / "summary.json").read_text()) for d in (original, new))
    assert after["final_eval"] == before["final_eval"] and after["steps"] == before["steps"]
    assert after["reproduces"] == {"run_dir": str(original), "differences": []}
    assert after["provenance"]["started_utc"] >= before["provenance"]["started_utc"]
    saved = (new / ".hydra" / "config.yaml").read_text()  # the config it trained, not the fresh defaults
    assert "gamma: 0.95" in saved and "seed: 3" in saved and "name: soft" in saved


def test_reproduce_says_which_libraries_differ(original: Path, tmp_path: Path):
    copy = tmp_path / "original"
    import shutil

    shutil.copytree(original, copy)
    summary = json.loads((copy / "summary.json").read_text())
    summary["provenance"]["torch"] = "2.4.0+cu121"
    (copy / "summary.json").write_text(json.dumps(summary))
    result = run_cli("dqn-train", [f"reproduce={copy}", "log.progress=off"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"other code or libraries than it ran with: torch 2.4.0+cu121 -> {torch.__version__}" in result.stdout
    after = json.loads((reproduction(tmp_path) / "summary.json").read_text())
    assert after["reproduces"]["differences"] == [f"torch 2.4.0+cu121 -> {torch.__version__}"]


@pytest.mark.parametrize("args, message", [
    (["optimizer.lr=0.1"], "trains that run's config exactly, so optimizer.lr=0.1 would change it"),
    (["target=hard"], "so target=hard would change it"),
    (["resume={run}"], "starts a new run; drop resume="),
])
def test_reproduce_refuses_what_would_change_the_config(original: Path, tmp_path: Path, args, message):
    result = run_cli("dqn-train", [f"reproduce={original}", *[a.format(run=original) for a in args]], tmp_path)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs").exists()  # nothing left behind


def test_reproduce_of_a_folder_that_is_no_run_is_one_line(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    result = run_cli("dqn-train", [f"reproduce={tmp_path / 'empty'}"], tmp_path)
    assert result.returncode == 2 and "not a dqn-train run dir (no checkpoints/ in it)" in result.stderr
    assert not (tmp_path / "outputs").exists()
