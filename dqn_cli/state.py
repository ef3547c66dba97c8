"""TrainingState: what the loop counts and carries between steps, checkpointed for exact resume."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple

import numpy as np

from dqn_cli.checkpoint import to_numpy_tree, to_tensor_tree

RECENT_EPISODES = 100  # the console's "return (last 100)"


class FinishedEpisode(NamedTuple):
    step: int  # the env step it ended on (each env of a vector step gets its own)
    episode_return: float  # raw, as the env paid it
    length: int


class Counts(NamedTuple):
    """The loop's two clocks at one moment: env steps and finished episodes."""
    step: int
    episodes: int

    def of(self, unit: str) -> int:
        return self.episodes if unit == "episode" else self.step


def crossings(before: int, after: int, interval: int) -> int:
    """How many multiples of `interval` a counter passed going from `before` to `after`."""
    return after // interval - before // interval


def _no_eval_yet() -> Dict[str, float]:
    return {"mean": -float("inf"), "std": 0.0, "step": -1}


@dataclass
class TrainingState:
    obs: np.ndarray  # each env's current observation
    returns: np.ndarray  # running raw return of each env's current episode
    lengths: np.ndarray
    step: int = 0  # env steps, summed over parallel envs
    episodes: int = 0
    updates: int = 0  # gradient steps
    best_eval: Dict[str, float] = field(default_factory=_no_eval_yet)  # mean, std and step of the best
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_EPISODES))  # last episodes' returns
    eval_pending: bool = False  # a periodic evaluation that a stop cut short: a resumed run plays it first

    @classmethod
    def start(cls, obs: np.ndarray) -> "TrainingState":
        return cls(obs=np.array(obs), returns=np.zeros(len(obs)), lengths=np.zeros(len(obs), dtype=np.int64))

    def record_step(self, next_obs: np.ndarray, rewards: np.ndarray, game_over: np.ndarray) -> List[FinishedEpisode]:
        """Move every env one step on; returns the episodes that ended (a lost Atari life is not an end)."""
        self.obs = np.array(next_obs)  # the vector env overwrites its own array on the next step
        self.returns += rewards
        self.lengths += 1
        finished = []
        for i in np.flatnonzero(game_over):
            self.episodes += 1
            self.recent.append(float(self.returns[i]))
            finished.append(FinishedEpisode(self.step + i + 1, self.returns[i], self.lengths[i]))
            self.returns[i], self.lengths[i] = 0.0, 0
        return finished

    def advance(self, num_envs: int) -> None:
        """Count one vector step."""
        self.step += num_envs

    @property
    def counts(self) -> Counts:
        return Counts(self.step, self.episodes)

    def count(self, unit: str) -> int:
        """Env steps, or finished episodes."""
        return self.episodes if unit == "episode" else self.step

    def passed(self, before: Counts, interval: int, unit: str = "step") -> int:
        """How many times a schedule of every `interval` steps (or episodes) came due since `before`."""
        return crossings(before.of(unit), self.count(unit), interval)

    def restart_episode(self, env_index: int, obs: np.ndarray) -> None:
        self.obs[env_index] = obs
        self.returns[env_index], self.lengths[env_index] = 0.0, 0

    def record_if_best(self, mean: float, std: float) -> bool:
        """Keep this evaluation as best_eval if it is the best so far, and say whether it is; ties go to
        the later weights (they saw more data at a lower epsilon)."""
        if mean < self.best_eval["mean"]:
            return False
        self.best_eval = {"mean": mean, "std": std, "step": self.step}
        return True

    def state_dict(self) -> Dict[str, Any]:
        return {
            "counters": {"step": self.step, "episodes": self.episodes, "updates": self.updates},
            "best_eval": dict(self.best_eval),
            "loop": {**to_tensor_tree({"obs": self.obs, "returns": self.returns, "lengths": self.lengths,
                                       "recent": list(self.recent)}), "eval_pending": self.eval_pending},
        }

    @classmethod
    def from_state_dict(cls, state: Dict[str, Any]) -> "TrainingState":
        loop = to_numpy_tree(state["loop"])
        return cls(obs=loop["obs"], returns=loop["returns"], lengths=loop["lengths"], **state["counters"],
                   best_eval=dict(state["best_eval"]), recent=deque(loop["recent"], maxlen=RECENT_EPISODES),
                   eval_pending=bool(loop.get("eval_pending", False)))
