"""dqn-cli: a config-driven experiment CLI for Deep Q-Networks, and its Python API.

    import dqn_cli
    summary = dqn_cli.train(["env=cartpole", "total_steps=20000"])   # what `dqn-train` does
    agent = dqn_cli.load(summary["run_dir"])                           # checkpoint="best" | "last" | a path
    action = agent.predict(observation)                                # q_values(obs), evaluate(episodes=10)

Importing this package loads nothing heavy: torch, gymnasium and Hydra load on the first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Sequence

if TYPE_CHECKING:
    from dqn_cli.api import TrainedAgent
    from dqn_cli.config import TrainConfig

__version__ = "0.1.0"
__all__ = ["compose_config", "load", "train"]


def load(run_dir, checkpoint="best", device: str = "cpu") -> "TrainedAgent":
    """The agent a run trained (see dqn_cli.api.load)."""
    from dqn_cli.api import load as load_agent

    return load_agent(run_dir, checkpoint, device)


def compose_config(overrides: Sequence[str] = ()) -> "TrainConfig":
    """The typed config `dqn-train <overrides>` would train with, without training (see dqn_cli.api.compose_config)."""
    from dqn_cli.api import compose_config as compose

    return compose(overrides)


def train(overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """Train as `dqn-train <overrides>` would; returns the summary with "run_dir" (see dqn_cli.api.train)."""
    from dqn_cli.api import train as train_run

    return train_run(overrides)
