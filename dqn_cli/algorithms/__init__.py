"""Training algorithms: each is its own parts (an `Algorithm`, run/parts.py) and a loop over them
and the run's shared parts. DQN is the only one so far."""

from __future__ import annotations

from dqn_cli.algorithms.dqn import DQN, run_loop

__all__ = ["DQN", "run_loop"]
