"""Atari (env=pong) training envs stepped in this process (env.vectorization=sync), in one worker
process each (async) and by EnvPool's C++ threads (env.backend=envpool, when the envpool extra is
installed), in env steps per second, for several widths.

    python benchmarks/atari_envs.py                      # Pong, widths 1 4 8 16
    python benchmarks/atari_envs.py --widths 8 --steps 500

Random actions, the DQN-paper preprocessing and frame stack of env=pong; the learner is not involved,
so this is the most a run can step. Prints one table row per width; never asserts on time.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from dataclasses import replace

import numpy as np

from dqn_cli.config import AtariConfig, EnvConfig
from dqn_cli.envs import make_vector_env


def env_steps_per_second(cfg: EnvConfig, vector_steps: int) -> float:
    envs = make_vector_env(cfg, seed=0)
    envs.reset(seed=list(range(cfg.num_envs)))
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, envs.single_action_space.n, cfg.num_envs) for _ in range(vector_steps)]
    started = time.perf_counter()
    for action in actions:
        envs.step(action)
    seconds = time.perf_counter() - started
    envs.close()
    return vector_steps * cfg.num_envs / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="ALE/Pong-v5")
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--steps", type=int, default=400, help="vector steps per measurement")
    args = parser.parse_args()
    print(f"{args.game}, {os.cpu_count()} cores: env steps/s (random actions)\n")
    pool = importlib.util.find_spec("envpool") is not None
    print("| envs | sync (this process) | async (a worker each) | async speed-up | envpool | envpool speed-up |")
    print("|---|---|---|---|---|---|")
    for width in args.widths:
        cfg = EnvConfig(id=args.game, num_envs=width, import_module="ale_py", frame_stack=4, atari=AtariConfig())
        sync = env_steps_per_second(cfg, args.steps)
        workers = env_steps_per_second(replace(cfg, vectorization="async"), args.steps) if width > 1 else sync
        threads = env_steps_per_second(replace(cfg, backend="envpool"), args.steps) if pool else float("nan")
        print(f"| {width} | {sync:,.0f} | {workers:,.0f} | {workers / sync:.2f}x | {threads:,.0f} | "
              f"{threads / sync:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
