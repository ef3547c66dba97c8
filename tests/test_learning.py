"""Learning is checked where it is cheap: CartPole under a fixed seed must reach a real score."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import only_run_dir, run_cli


def test_default_cartpole_learns_to_balance(workdir: Path):
    # A random policy scores about 22 on CartPole-v1; 15k default steps must get far above it
    # (seeds 0 and 1 reached 500 with best.pt when this threshold was set).
    result = run_cli("dqn-train", ["seed=0", "total_steps=15000", "eval.interval=2500", "log.progress=off",
                                   "eval.final_episodes=20"], workdir, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads((only_run_dir(workdir) / "summary.json").read_text())
    assert summary["final_eval"]["best"]["mean"] >= 300, summary["final_eval"]
