"""Learning is checked where it is cheap: the default CartPole run under a fixed seed must solve it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import only_run_dir, run_cli


@pytest.mark.slow  # the full default run
def test_default_dqn_train_solves_cartpole(workdir: Path):
    # The full default run (~20 s here). A random policy scores ~22; solved is a 100-episode greedy
    # mean >= 475. Seeds 0-4 all reached 500 with best.pt when this test was written (README).
    result = run_cli("dqn-train", ["seed=0", "log.progress=off"], workdir, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads((only_run_dir(workdir) / "summary.json").read_text())
    assert summary["steps"] == 40_000
    assert summary["final_eval"]["best"]["mean"] >= 475, summary["final_eval"]
    assert summary["solved"] is True
