"""dqn-eval's core: evaluate a finished run's checkpoint greedily, optionally with a video."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Optional

from dqn_cli.api import load
from dqn_cli.checkpoint import atomic_write_json
from dqn_cli.envs import FINAL_EVAL_SEED_OFFSET


def evaluate_run(run_dir: Path, checkpoint: str = "best", episodes: Optional[int] = None, video: bool = False,
                 seed: int = -1, device: str = "cpu") -> Dict[str, Any]:
    """Evaluate and write <run>/eval.json; seed -1 and episodes None replay the run's own final evaluation."""
    agent = load(run_dir, checkpoint, device)
    episodes = agent.config.eval.final_episodes if episodes is None else episodes
    started = time.perf_counter()
    first_seed = agent.config.seed + FINAL_EVAL_SEED_OFFSET if seed < 0 else seed
    video_path = run_dir / "videos" / f"{checkpoint}-seed{first_seed}.mp4" if video else None
    result = agent.evaluate(episodes, seed=None if seed < 0 else seed, video=video_path)
    report: Dict[str, Any] = {"checkpoint": checkpoint, "checkpoint_step": agent.step, "env_id": agent.config.env.id,
                              **result, "eval_time_s": round(time.perf_counter() - started, 3)}
    eval_json = run_dir / "eval.json"
    atomic_write_json(eval_json, report)
    report["eval_json"] = str(eval_json)
    return report
