"""CartPole stepped as Python envs in a SyncVectorEnv (what training uses) against Gymnasium's
numpy-vectorised CartPoleVectorEnv (what evaluation uses), per env step, for several widths.

    python benchmarks/vector_envs.py                  # widths 1 4 16 64 100
    python benchmarks/vector_envs.py --widths 8 --steps 5000

Prints one table row per width (median of 3 repeats); never asserts on time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from dqn_cli.config import EnvConfig
from dqn_cli.envs import make_batched_env, make_vector_env


def microseconds_per_step(env, width: int, steps: int) -> float:
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, 2, width) for _ in range(steps)]
    env.reset(seed=0)
    started = time.perf_counter()
    for action in actions:
        env.step(action)
    return (time.perf_counter() - started) / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 4, 16, 64, 100])
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    print("| envs | SyncVectorEnv, us per vector step | CartPoleVectorEnv, us per vector step | speed-up |")
    print("|---|---|---|---|")
    for width in args.widths:
        sync = make_vector_env(EnvConfig(num_envs=width), seed=0)
        batched = make_batched_env(EnvConfig(), width)
        sync_us = statistics.median(microseconds_per_step(sync, width, args.steps) for _ in range(3))
        batched_us = statistics.median(microseconds_per_step(batched, width, args.steps) for _ in range(3))
        print(f"| {width} | {sync_us:.1f} | {batched_us:.1f} | {sync_us / batched_us:.2f}x |")


if __name__ == "__main__":
    main()
