"""dqn-eval's core: evaluate a finished run's checkpoint greedily, optionally with a video. Whatever
would fail at the end (an unwritable run dir, no video encoder, a checkpoint of another env) is
checked before the first episode."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from dqn_cli import provenance
from dqn_cli.api import TrainedAgent, load
from dqn_cli.checkpoint import atomic_write_json
from dqn_cli.envs import FINAL_EVAL_SEED_OFFSET
from dqn_cli.evaluate import check_renders
from dqn_cli.errors import RunDirError, UserError


def check_writable(run_dir: Path) -> None:
    probe = run_dir / f".dqn-eval-{os.getpid()}.tmp"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise RunDirError(f"cannot write eval results into {run_dir} ({error.strerror or error}); copy the run to a "
                          "writable folder and evaluate the copy") from None


def check_video_encoder() -> None:
    """imageio writes mp4 through an ffmpeg binary: find one that runs, before playing anything."""
    try:
        import imageio_ffmpeg

        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-version"], capture_output=True, check=True, timeout=60)
    except (ImportError, RuntimeError, OSError, subprocess.SubprocessError) as error:
        raise UserError(f"video=true needs an ffmpeg encoder and none runs here ({type(error).__name__}: "
                        f"{str(error).splitlines()[0] if str(error) else 'no detail'}); pip install imageio-ffmpeg, "
                        "point IMAGEIO_FFMPEG_EXE at an ffmpeg binary, or leave video out") from None


def check_same_env(run_dir: Path, agent: TrainedAgent) -> None:
    """A checkpoint copied in from another run would be evaluated on its own env without a word."""
    try:
        run_env = json.loads((run_dir / "summary.json").read_text()).get("env_id")
    except (OSError, ValueError, AttributeError):
        return  # an unfinished run: nothing to compare with
    if run_env is not None and run_env != agent.config.env.id:
        raise RunDirError(f"{agent.checkpoint} was trained on {agent.config.env.id}, but {run_dir} is a run of "
                          f"{run_env} (summary.json); put that run's own checkpoint back, or evaluate the run it "
                          "came from")


def eval_file_name(label: str, seed: int, episodes: int, own_episodes: int) -> str:
    """One file per checkpoint and setting, so no evaluation overwrites another's: eval_best.json
    replays the run's own final evaluation; eval_last_seed7_episodes20.json is another one."""
    setting = ("" if seed < 0 else f"_seed{seed}") + ("" if episodes == own_episodes else f"_episodes{episodes}")
    return f"eval_{label}{setting}.json"


def evaluate_run(run_dir: Path, checkpoint: str = "best", episodes: Optional[int] = None, video: bool = False,
                 seed: int = -1, device: str = "cpu", *, stop: Optional[Callable[[], bool]] = None,
                 announce: Callable[[str], None] = lambda line: None) -> Dict[str, Any]:
    """Evaluate and write <run>/eval_<checkpoint>[_seedS][_episodesN].json; seed -1 and episodes None replay the
    run's own final evaluation. `stop()` true ends it early: the file then holds the episodes so far, marked partial.
    `announce` gets one line when the checks have passed and the episodes start."""
    agent = load(run_dir, checkpoint, device)
    check_same_env(run_dir, agent)
    check_writable(run_dir)
    if video:
        check_video_encoder()
        check_renders(agent.config.env)
    own_episodes = agent.config.eval.final_episodes
    episodes = own_episodes if episodes is None else episodes
    started = time.perf_counter()
    first_seed = agent.config.seed + FINAL_EVAL_SEED_OFFSET if seed < 0 else seed
    label = agent.checkpoint.stem
    video_path = run_dir / "videos" / f"{label}-seed{first_seed}.mp4" if video else None
    announce(f"{label}.pt (step {agent.step:,}): {episodes} greedy episode(s) of {agent.config.env.id} from seed "
             f"{first_seed}")
    result = agent.evaluate(episodes, seed=None if seed < 0 else seed, video=video_path, stop=stop)
    report: Dict[str, Any] = {"checkpoint": label, "checkpoint_path": str(agent.checkpoint),
                              "checkpoint_step": agent.step, "env_id": agent.config.env.id, **result,
                              "eval_time_s": round(time.perf_counter() - started, 3),
                              "provenance": provenance.collect(agent.device)}
    eval_json = run_dir / eval_file_name(label, -1 if seed < 0 else first_seed, episodes, own_episodes)
    atomic_write_json(eval_json, report)
    report["eval_json"] = str(eval_json)
    return report
