"""A run's checkpoints: what an exact resume needs (state_dict / load_state_dict), saving periodic
checkpoints, best.pt and last.pt, pruning old ones, and the checks before a run is resumed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, Optional

from dqn_cli.checkpoint import (Resumable, find_resumable, kept_checkpoint, link_atomically, load_checkpoint,
                                periodic_checkpoints, prune_periodic, replay_path, restore_rng_state, rng_state,
                                save_checkpoint, save_replay, to_numpy_tree, to_tensor_tree)
from dqn_cli.config import TrainConfig, check_resume_compatible, to_dict
from dqn_cli.envs import TRAIN_SEED_OFFSET, capture_env_states, restart_episodes, restore_env_states
from dqn_cli.errors import ConfigError, RunAlreadyFinished, RunDirError, TrainingDiverged, resume_argument
from dqn_cli.run.parts import RunParts
from dqn_cli.state import Counts, TrainingState

log = logging.getLogger("dqn_cli")


def find_resume_point(run_dir: Path, cfg: TrainConfig, resume: bool) -> Optional[Resumable]:
    """The checkpoint to resume from (resume=True), after checking the run can go on as `cfg` says;
    None for a new run, which must not land in a dir that already holds one. Writes nothing."""
    checkpoint_dir = run_dir / "checkpoints"
    if not resume:
        if periodic_checkpoints(checkpoint_dir):
            raise RunDirError(f"{run_dir} already holds a run (checkpoints/step_*.pt); continue it with "
                              f"{resume_argument(run_dir)}, or train in a new folder")
        return None
    resumed = find_resumable(checkpoint_dir)
    check_resume_compatible(resumed.state["config"], cfg)
    counters = resumed.state["counters"]
    check_budget_left(run_dir, Counts(counters["step"], counters["episodes"]), cfg, resumed.state["config"])
    return resumed


def check_budget_left(run_dir: Path, reached: Counts, cfg: TrainConfig, saved: Dict[str, Any]) -> None:
    """A resume needs a budget at or past what the run reached; a finished run is left alone. Vector
    envs may end a run past its budget (several episodes end at once): that same budget is finished."""
    key, count = f"total_{cfg.budget_unit}s", reached.of(cfg.budget_unit)
    if count > cfg.budget and saved.get(key) != cfg.budget:
        reached_what = "step" if cfg.budget_unit == "step" else "episode count"
        raise ConfigError(f"{key}={cfg.budget} is below the {reached_what} this run reached ({count}); pass "
                          f"{key}={count} or more")
    finished = final_summary(run_dir / "summary.json")
    if finished is not None and count >= cfg.budget:
        raise RunAlreadyFinished(run_dir, reached.step, key, count)
    if finished is not None and finished.get("stopped_when_solved") is not None and cfg.eval.stop_when_solved:
        raise RunAlreadyFinished(run_dir, reached.step, solved=True)


def final_summary(path: Path) -> Optional[Dict[str, Any]]:
    """A run's summary.json if it is complete (not marked partial), else None."""
    try:
        summary = json.loads(path.read_text())
        return None if summary.get("partial", False) else summary
    except (OSError, ValueError, AttributeError):
        return None


class Checkpointer:
    """Packs the run's shared parts (counters, RNGs, env states, config) and its algorithm's own into
    one weights-only-loadable checkpoint, and back."""

    def __init__(self, run: RunParts):
        self.run = run
        self.dir = run.run_dir / "checkpoints"
        self.config_dict = to_dict(run.cfg)
        cfg = run.cfg
        self.interval = cfg.checkpoint.interval or cfg.eval.interval or cfg.total_steps  # env steps

    def state_dict(self) -> Dict[str, Any]:
        """Everything an exact resume needs, as tensors and plain containers."""
        run = self.run
        own = dict(run.algorithm.state_dict())
        training = run.state.state_dict()
        training["loop"].update(own.pop("loop", {}))
        training["loop"]["envs"] = to_tensor_tree(capture_env_states(run.envs))
        rng = {**rng_state(run.rng), **own.pop("rng", {})}
        timing = {"wall_time_s": run.clock.earlier_s + run.clock.since_start()}  # a resumed run's total time
        return {**own, **training, "rng": rng, "config": self.config_dict, "timing": timing}

    def load_state_dict(self, state: Dict[str, Any], replay_arrays: Optional[Dict[str, Any]]) -> None:
        run = self.run
        run.algorithm.load_state_dict(state, replay_arrays)
        restore_rng_state(state["rng"], run.rng)
        run.state = TrainingState.from_state_dict(state)
        run.clock.earlier_s = float(state.get("timing", {}).get("wall_time_s", 0.0))  # older checkpoints: unknown
        inexact = restore_env_states(run.envs, to_numpy_tree(state["loop"]["envs"]))
        if inexact:  # native simulator state (Box2D, ALE) and async workers' state cannot be copied
            seeds = [run.cfg.seed + TRAIN_SEED_OFFSET + run.state.step + i for i in inexact]
            for i, obs in zip(inexact, restart_episodes(run.envs, inexact, seeds)):
                run.state.restart_episode(i, obs)
            log.warning(f"env(s) {', '.join(map(str, inexact))}: simulator state not restorable; "
                        "they start new episodes on resume")

    def save(self, name: str) -> Path:
        """checkpoints/<name>.pt, refused (nothing written) if the weights hold NaN or inf."""
        if not self.run.algorithm.weights_are_finite():
            raise TrainingDiverged(f"the weights hold NaN or inf at step {self.run.state.step}; nothing was saved "
                                   f"({kept_checkpoint(self.dir)})")
        path = self.dir / f"{name}.pt"
        save_checkpoint(path, self.state_dict())
        return path

    def save_periodic(self) -> None:
        """step_<N>.pt (+ its replay), last.pt pointing at it, and only checkpoint.keep of them kept."""
        step = self.run.state.step
        arrays = self.run.algorithm.replay_arrays() if self.run.cfg.checkpoint.save_replay else None
        if arrays is not None:
            save_replay(replay_path(self.dir, step), arrays)
        link_atomically(self.save(f"step_{step:012d}"), self.dir / "last.pt")
        prune_periodic(self.dir, keep=self.run.cfg.checkpoint.keep)

    def save_after_env_failure(self) -> str:
        """The last completed step saved (the env's own state as it was left), and how to go on."""
        try:
            self.save_periodic()
        except (TrainingDiverged, OSError) as error:
            return f"no checkpoint written ({error})"
        return (f"checkpoint written; after fixing the env, continue with: "
                f"dqn-train {resume_argument(self.run.run_dir)}")

    def load_weights(self, name: str) -> None:
        """Put checkpoints/<name>.pt's network weights into the algorithm's network."""
        self.run.algorithm.network.load_state_dict(load_checkpoint(self.dir / f"{name}.pt")["online"])
