"""CartPole stepped as Python envs in a SyncVectorEnv (training below BATCHED_TRAINING_FROM envs),
as a BatchedTrainingEnv (training from there on: the numpy batch with same-step resets by plain
envs) and as Gymnasium's bare CartPoleVectorEnv (evaluation), per vector step, for several widths.

    python benchmarks/vector_envs.py                  # widths 1 2 4 8 16 64 100
    python benchmarks/vector_envs.py --widths 8 --steps 5000

Prints one table row per width (median of 3 repeats); never asserts on time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from dqn_cli.config import EnvConfig
from dqn_cli import envs as dqn_envs
from dqn_cli.envs import BatchedTrainingEnv, make_batched_env, make_env, make_vector_env


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
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 2, 4, 8, 16, 64, 100])
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    print("| envs | SyncVectorEnv, us per vector step | BatchedTrainingEnv | CartPoleVectorEnv | "
          "BatchedTrainingEnv speed-up |")
    print("|---|---|---|---|---|")
    for width in args.widths:
        cfg = EnvConfig(num_envs=width)
        with_batch_from, dqn_envs.BATCHED_TRAINING_FROM = dqn_envs.BATCHED_TRAINING_FROM, 10**9
        sync = make_vector_env(cfg, seed=0)  # Python envs at every width
        dqn_envs.BATCHED_TRAINING_FROM = with_batch_from
        training_batch = BatchedTrainingEnv(make_batched_env(cfg, width),
                                            [make_env(cfg, training=True) for _ in range(width)])
        bare = make_batched_env(cfg, width)
        sync_us, training_us, bare_us = (statistics.median(microseconds_per_step(env, width, args.steps)
                                                           for _ in range(3))
                                         for env in (sync, training_batch, bare))
        print(f"| {width} | {sync_us:.1f} | {training_us:.1f} | {bare_us:.1f} | {sync_us / training_us:.2f}x |")

if __name__ == "__main__":
    main()
