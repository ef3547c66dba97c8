"""Training algorithms: each is its own parts (an `Algorithm`, run/parts.py) and a loop over them
and the run's shared parts, chosen by the config group `algorithm`."""

from __future__ import annotations

from typing import Callable, Dict, NamedTuple

from dqn_cli.algorithms import dqn, pqn


class AlgorithmParts(NamedTuple):
    build: Callable  # (q_network, cfg, obs_space, device, cores=) -> its own parts
    loop: Callable  # (run, should_stop) -> None


# algorithm config name -> its parts and its loop
ALGORITHMS: Dict[str, AlgorithmParts] = {"dqn": AlgorithmParts(dqn.DQN, dqn.run_loop),
                                         "pqn": AlgorithmParts(pqn.PQN, pqn.run_loop)}
