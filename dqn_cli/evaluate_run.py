"""dqn-eval's core: evaluate a finished run's checkpoint greedily, optionally with a video."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict

from omegaconf.errors import OmegaConfBaseException

from dqn_cli.checkpoint import atomic_write_json, load_checkpoint
from dqn_cli.config import from_dict
from dqn_cli.envs import FINAL_EVAL_SEED_OFFSET, make_env
from dqn_cli.errors import RunDirError
from dqn_cli.evaluate import evaluate, greedy_policy, record_video
from dqn_cli.networks import build_q_network
from dqn_cli.runtime import resolve_device


def evaluate_run(run_dir: Path, checkpoint: str = "best", episodes: int = 100, video: bool = False,
                 seed: int = -1, device: str = "cpu") -> Dict[str, Any]:
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist; pass run=<dir> of a finished run, "
                          "e.g. one under outputs/runs/")
    path = run_dir / "checkpoints" / f"{checkpoint}.pt"
    if not path.is_file():
        raise RunDirError(f"{path} does not exist; is {run_dir} a dqn-train run dir "
                          "(it should hold checkpoints/best.pt and checkpoints/last.pt)?")
    state = load_checkpoint(path)
    try:
        cfg = from_dict(state["config"])
    except (KeyError, TypeError, OmegaConfBaseException) as error:
        raise RunDirError(f"checkpoint {path} holds no usable config ({error}); was it written by dqn-cli?") from None
    torch_device = resolve_device(device)
    probe = make_env(cfg.env)
    q_network = build_q_network(cfg.network, probe.observation_space.shape, probe.observation_space.dtype,
                                int(probe.action_space.n))
    probe.close()
    try:
        q_network.load_state_dict(state["online"])
    except (KeyError, RuntimeError) as error:
        raise RunDirError(f"checkpoint {path} does not match its own network config: "
                          f"{str(error).splitlines()[0]}") from None
    q_network.to(torch_device).eval()
    policy = greedy_policy(q_network, torch_device)
    first_seed = cfg.seed + FINAL_EVAL_SEED_OFFSET if seed < 0 else seed

    started = time.perf_counter()
    result = evaluate(policy, cfg.env, episodes, seed=first_seed)
    report: Dict[str, Any] = {
        "checkpoint": checkpoint,
        "checkpoint_step": state["counters"]["step"],
        "env_id": cfg.env.id,
        "first_seed": first_seed,
        **result.as_dict(),
        "returns": [float(r) for r in result.returns],
        "eval_time_s": round(time.perf_counter() - started, 3),
    }
    if video:
        video_path = run_dir / "videos" / f"{checkpoint}-seed{first_seed}.mp4"
        report["video_return"] = record_video(policy, cfg.env, video_path, seed=first_seed)
        report["video"] = str(video_path)
    eval_json = run_dir / "eval.json"
    atomic_write_json(eval_json, report)
    report["eval_json"] = str(eval_json)
    return report
