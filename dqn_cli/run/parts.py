"""The seam between a training loop and the parts every loop shares.

A loop (algorithms/dqn.py's `run_loop`, or a second algorithm's) gets a `TrainingRun`: the envs, the
counters, the metrics, the checkpointer and the evaluator, all built by run/assembly.py. What is its
own (DQN: the agent, the replay and the epsilon schedule) it brings as an `Algorithm`, which the
checkpointer packs and the evaluator scores without knowing what is inside. docs/development.md
walks through adding a loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from dqn_cli.config import TrainConfig
from dqn_cli.evaluate import EvalResult
from dqn_cli.metrics import Metrics
from dqn_cli.state import TrainingState


@dataclass
class RunClock:
    """When this process's part of the run started, and where its loop started."""
    started: float = field(default_factory=time.perf_counter)  # the run's set-up began
    startup_s: Optional[float] = None  # process launch -> first env step
    loop_started: float = 0.0
    start_step: int = 0  # a resumed run's loop starts past 0
    earlier_s: float = 0.0  # a resumed run: the wall time of its earlier processes, up to their last checkpoint

    def loop_starts(self, step: int, startup_s: Optional[float]) -> None:
        self.loop_started, self.start_step, self.startup_s = time.perf_counter(), step, startup_s

    def since_start(self) -> float:
        return time.perf_counter() - self.started

    def since_loop_start(self) -> float:
        return time.perf_counter() - self.loop_started


class Algorithm(Protocol):
    """An algorithm's own parts, as the shared run sees them."""

    network: nn.Module  # saved as checkpoint["online"]; the final evaluation loads best.pt / last.pt into it
    eval_q: Callable[[torch.Tensor], torch.Tensor]  # what greedy evaluation scores: `network`, or the same bits faster

    def weights_are_finite(self) -> bool: ...

    def state_dict(self) -> Dict[str, Any]:
        """Its part of a checkpoint: tensors and plain containers. Its "loop" and "rng" entries are
        merged into the run's own; every other key must be its own (online, target, optimizer, ...)."""

    def load_state_dict(self, state: Dict[str, Any], replay_arrays: Optional[Dict[str, np.ndarray]]) -> None: ...

    def replay_arrays(self) -> Optional[Dict[str, np.ndarray]]:
        """Arrays saved beside each periodic checkpoint (DQN: the replay buffer), or None."""

    def describe(self) -> str:
        """Its part of the start-up line (e.g. the replay buffer's size)."""

    def close(self) -> None:
        """Stop whatever it started beside the loop (DQN's prefetch worker); called however the run ends."""


class Checkpoints(Protocol):
    """What a loop calls of the checkpointer (run/checkpointer.py)."""

    def save_periodic(self) -> None: ...


class Evaluations(Protocol):
    """What a loop calls of the evaluator (run/evaluator.py)."""

    def evaluate_and_keep_best(self) -> EvalResult: ...

    def confirms_solved(self, result: EvalResult) -> bool: ...

    def evaluate_at_end(self) -> None: ...


class RunParts(Protocol):
    """The shared parts of one run."""

    cfg: TrainConfig
    run_dir: Path
    rng: np.random.Generator  # the loop's own draws: random actions, exploration
    envs: gym.vector.VectorEnv
    n_actions: int
    device: torch.device
    algorithm: Algorithm
    state: TrainingState  # counters, current observations, the best evaluation so far
    metrics: Metrics
    clock: RunClock


class TrainingRun(RunParts, Protocol):
    """What a loop gets: the shared parts, the checkpointer and the evaluator."""

    checkpoints: Checkpoints
    evaluator: Evaluations
