"""Learning is checked where it is cheap: the default CartPole run under a fixed seed must solve it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import only_run_dir, run_cli


@pytest.mark.slow  # the full default run
def test_default_dqn_train_solves_cartpole(workdir: Path):
    # The full default run. A random policy scores ~22; solved is a 100-episode greedy mean >= 475.
    # The default trains until an evaluation solves it, so the final weights (last.pt) solve too:
    # on seeds 0-9 both did, stopping between 14k and 44k steps (docs/benchmarks.md).
    result = run_cli("dqn-train", ["seed=0", "log.progress=off"], workdir, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads((only_run_dir(workdir) / "summary.json").read_text())
    assert summary["stopped_when_solved"] == summary["steps"] < 50_000
    assert summary["final_eval"]["best"]["mean"] >= 475, summary["final_eval"]
    assert summary["final_eval"]["last"]["mean"] >= 475, summary["final_eval"]
    assert summary["solved"] is True
