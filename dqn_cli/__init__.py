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
    """The agent a finished (or stopped) run trained, ready to act.

    Args:
        run_dir: the run's directory, e.g. ``summary["run_dir"]`` or ``"outputs/runs/<run>"``.
        checkpoint: ``"best"`` (the best periodic evaluation's weights), ``"last"`` (the final weights),
            or a checkpoint file: a path, or a name under ``<run_dir>/checkpoints`` such as
            ``"step_000000012000"``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.

    Returns a TrainedAgent: ``predict(obs)`` (greedy actions), ``q_values(obs)``,
    ``evaluate(episodes=10, seed=None, video=None)`` and ``config`` (the run's TrainConfig).

    Raises RunDirError (a UserError) with a one-line reason when the dir or the checkpoint is missing,
    unreadable or not dqn-cli's.

    Example::

        agent = dqn_cli.load("outputs/runs/2026-12-04_01-27-57_cartpole_seed0", checkpoint="last")
        agent.evaluate(episodes=20)   # {"mean": ..., "std": ..., "returns": [...], ...}
    """
    from dqn_cli.api import load as load_agent

    return load_agent(run_dir, checkpoint, device)


def compose_config(overrides: Sequence[str] = ()) -> "TrainConfig":
    """The typed config ``dqn-train <overrides>`` would train with, without training or a run dir.

    Args:
        overrides: what dqn-train takes on its command line, as a list of strings, e.g.
            ``["env=acrobot", "optimizer.lr=3e-4"]``.

    Returns the TrainConfig (a dataclass): change it and hand it to ``dqn_cli.run.train.train(cfg,
    run_dir)`` (docs/extending.md). Raises ConfigError with dqn-train's one-line message for a bad
    override.
    """
    from dqn_cli.api import compose_config as compose

    return compose(overrides)


def train(overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """Train in this process exactly as ``dqn-train <overrides>`` would.

    Args:
        overrides: dqn-train's command-line overrides as a list of strings, e.g.
            ``["env=cartpole", "target=soft", "seed=3"]``. ``log.progress=off`` trains silently.

    Progress lines and every evaluation line go to stderr (a terminal or a notebook) unless the caller
    has configured logging itself, in which case they go to the caller's handlers ("dqn_cli" logger).

    Returns summary.json's contents plus ``"run_dir"``: ``final_eval["best"|"last"]`` (mean, std, min,
    max over the final greedy episodes), ``steps``, ``wall_time_s``, ``steps_per_second``,
    ``provenance``, ... Raises ConfigError (a UserError) with dqn-train's one-line message for a bad
    override, TrainingInterrupted when stopped (Ctrl-C; resume with ``resume=<run_dir>``).

    Example::

        summary = dqn_cli.train(["total_steps=20000"])
        print(summary["run_dir"], summary["final_eval"]["best"]["mean"])
    """
    from dqn_cli.api import train as train_run

    return train_run(overrides)
