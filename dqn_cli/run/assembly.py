"""Run: one training run's parts, built fresh or from a checkpoint."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, Sequence

import torch
from omegaconf import OmegaConf

from dqn_cli import provenance
from dqn_cli.algorithms import ALGORITHMS
from dqn_cli.config import TrainConfig, flatten
from dqn_cli.console import record_in_train_log
from dqn_cli.envs import TRAIN_SEED_OFFSET, make_vector_env
from dqn_cli.metrics import Metrics
from dqn_cli.networks import build_q_network
from dqn_cli.run.checkpointer import Checkpointer, find_resume_point
from dqn_cli.run.evaluator import Evaluator
from dqn_cli.run.parts import RunClock
from dqn_cli.runtime import (check_compiler, device_for, seconds_since_launch, seed_everything, torch_threads,
                             usable_cores)
from dqn_cli.state import TrainingState
from dqn_cli.trackers import build_tracker, run_name

log = logging.getLogger("dqn_cli")


def warn_about_settings(cfg: TrainConfig) -> None:
    """Settings that are valid but probably not what was meant."""
    if cfg.total_episodes is not None:
        return  # how many steps the episodes take is not known ahead
    per_round = cfg.env.num_envs * (cfg.algorithm.rollout_steps if cfg.algorithm.name == "pqn" else 1)
    trained = -(-cfg.total_steps // per_round) * per_round
    if trained != cfg.total_steps:
        what = f"one rollout: {cfg.env.num_envs} envs x {cfg.algorithm.rollout_steps} steps" \
            if per_round != cfg.env.num_envs else f"one step of the {cfg.env.num_envs} envs"
        log.info(f"total_steps={cfg.total_steps:,} is not a multiple of {per_round:,} ({what}): the run trains "
                 f"{trained:,} steps")
    if cfg.learning_starts >= cfg.total_steps:
        log.warning(f"learning_starts ({cfg.learning_starts:,}) >= total_steps ({cfg.total_steps:,}): no update will "
                    "happen; lower learning_starts or raise total_steps")
    if cfg.eval.interval > cfg.total_steps:
        log.warning(f"eval.interval ({cfg.eval.interval:,}) > total_steps ({cfg.total_steps:,}): only the "
                    "end-of-training evaluation will pick best.pt")


class Run:
    """The parts a training loop works with (run/parts.py's TrainingRun): envs, counters, metrics,
    the checkpointer, the evaluator, and the algorithm's own parts. Built in the order that keeps
    every random number where a fresh or resumed run expects it."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, resume: bool, overrides: Sequence[str] = (),
                 sweep: Optional[str] = None, cores: Optional[int] = None):
        self.clock = RunClock()
        self.cfg, self.run_dir = cfg, run_dir
        self.rng = seed_everything(cfg.seed)
        resumed = find_resume_point(run_dir, cfg, resume)  # before anything is written

        self.envs = make_vector_env(cfg.env, cfg.seed)
        obs, _ = self.envs.reset(seed=[cfg.seed + TRAIN_SEED_OFFSET + i for i in range(cfg.env.num_envs)])
        obs_space, self.n_actions = self.envs.single_observation_space, int(self.envs.single_action_space.n)
        q_network = build_q_network(cfg.network, obs_space.shape, obs_space.dtype, self.n_actions)
        self.device = device_for(cfg.device, q_network)
        check_compiler(cfg.compile, self.device)
        torch.set_num_threads(torch_threads(cfg.torch_threads, self.device, q_network, cfg.update_rows, cores))
        self.algorithm = ALGORITHMS[cfg.algorithm.name].build(q_network, cfg, obs_space, self.device,
                                                              cores=cores or usable_cores())
        self.state = TrainingState.start(obs)
        self.checkpoints = Checkpointer(self)
        if resumed is not None:
            self.checkpoints.load_state_dict(resumed.state, resumed.replay)
            log.info(f"resumed from {resumed.path} at step {self.state.step:,}"
                     + ("" if resumed.replay is not None else " (no saved replay: the buffer starts empty)"))

        config_dict = self.checkpoints.config_dict
        self.provenance = provenance.collect(self.device, overrides)
        record_in_train_log(f"provenance: {json.dumps(self.provenance)}", logging.INFO)  # each process of a resumed run
        self.reproduces = None if cfg.reproduce is None else \
            provenance.against_original(Path(cfg.reproduce), self.provenance)
        if self.reproduces is not None:
            (log.info if self.reproduces["differences"] == [] else log.warning)(
                provenance.describe_reproduction(self.reproduces, self.provenance))
        tracker = build_tracker(cfg.tracker, run_dir, run_name(cfg.env.id, cfg.seed, overrides), sweep,
                                {**flatten(config_dict), **flatten({"provenance": self.provenance})})
        self.metrics = Metrics(run_dir, cfg, self.state.counts, resumed is not None, tracker)
        self.metrics.writer.config_text(OmegaConf.to_yaml(config_dict))
        self.metrics.writer.text("provenance", provenance.markdown(self.provenance))
        self.evaluator = Evaluator(self, self.checkpoints)
        warn_about_settings(cfg)
        log.info(f"{cfg.env.id} x{cfg.env.num_envs} | {sum(p.numel() for p in q_network.parameters()):,} parameters "
                 f"on {self.device} | {self.algorithm.describe()}")
        self.clock.loop_starts(self.state.step, seconds_since_launch())  # launch -> first env step
