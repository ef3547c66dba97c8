"""How fast DQN at the MinAtar paper's settings (experiment=minatar) could train on this CPU, and where
a step's time goes.

    python benchmarks/minatar_floor.py                  # 30k-step run (25k updates), one torch thread
    python benchmarks/minatar_floor.py --steps 60000
    python benchmarks/minatar_floor.py compile=true    # dqn-train overrides for the timed run
    python benchmarks/minatar_floor.py prefetch=false  # the preset's prefetch worker off: one process

1. The update's floating-point work, counted from the network's shapes: the online network's forward
   and backward passes and the target network's forward pass on a batch of 32.
2. This CPU's matrix-multiply rate, one thread: each of the update's products timed at its own shape,
   and a large 512x512 product for the rate the cores reach at best.
3. The floor: the update's FLOPs at those rates, as env steps/s (one update per env step).
4. A real run, each part of the loop timed: the update, acting, replay sampling and adding, the env
   step, and the rest (logging, counters, Python).
Prints markdown tables; never asserts.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

import torch

BATCH, GRID, CHANNELS, KERNEL, FILTERS, HIDDEN, ACTIONS = 32, 10, 4, 3, 16, 128, 6


def update_products() -> dict:
    """The update's matrix products, (m, k, n) -> how many per update. The convolution is a product over
    image patches (im2col), as the fast learner computes it."""
    positions = (GRID - KERNEL + 1) ** 2
    patch, features = CHANNELS * KERNEL * KERNEL, positions * FILTERS
    forward = [(BATCH * positions, patch, FILTERS), (BATCH, features, HIDDEN), (BATCH, HIDDEN, ACTIONS)]
    backward = [(HIDDEN, BATCH, ACTIONS), (BATCH, ACTIONS, HIDDEN),  # head: weight and input gradients
                (features, BATCH, HIDDEN), (BATCH, HIDDEN, features),  # hidden layer: weight and input gradients
                (patch, BATCH * positions, FILTERS)]  # convolution: weight gradient (its input needs none)
    counts: dict = collections.Counter()
    for shape in forward * 2 + backward:  # online and target forward passes, online backward pass
        counts[shape] += 1
    return counts


def microseconds(m: int, k: int, n: int, repeats: int = 2000) -> float:
    a, b, out = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
    for _ in range(100):
        torch.mm(a, b, out=out)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b, out=out)
    return (time.perf_counter() - started) / repeats * 1e6


def floor_table() -> float:
    products = update_products()
    flops = sum(2 * m * k * n * count for (m, k, n), count in products.items())
    product_us = sum(microseconds(m, k, n) * count for (m, k, n), count in products.items())
    peak_gflops = 2 * 512 ** 3 / microseconds(512, 512, 512, repeats=50) / 1e3
    print("| | value |\n|---|---|")
    print(f"| FLOPs per update (batch {BATCH}: online forward and backward, target forward) | {flops / 1e6:.1f} M |")
    print(f"| matrix products per update, each timed at its shape | {product_us:.0f} us "
          f"({flops / product_us / 1e3:.0f} GFLOP/s) |")
    print(f"| a 512x512 product, one thread | {peak_gflops:.0f} GFLOP/s |")
    print(f"| floor at that rate (the products alone) | {flops / peak_gflops / 1e3:.0f} us = "
          f"{peak_gflops * 1e9 / flops:,.0f} steps/s |")
    print(f"| floor at the timed shapes | {product_us:.0f} us = {1e6 / product_us:,.0f} steps/s |\n", flush=True)
    return product_us


def timed_run(steps: int, overrides: list) -> None:
    """experiment=minatar for `steps` steps, each part of the loop timed by wrapping it."""
    import gymnasium as gym

    from dqn_cli.agent import DQNAgent
    from dqn_cli.replay.buffer import ReplayBuffer
    from dqn_cli.replay.prefetch import BatchPrefetcher
    from dqn_cli.state import TrainingState
    from dqn_cli.scripts import train_main

    spent: dict = collections.defaultdict(float)
    parts = {"the update (agent.learn)": (DQNAgent, "learn"), "acting (agent.act)": (DQNAgent, "act"),
             "replay sample": (ReplayBuffer, "sample"), "replay add": (ReplayBuffer, "add"),
             "prefetch=true: the batch handed over (or sampled here)": (BatchPrefetcher, "sample"),
             "env step (Gymnasium + MinAtar)": (gym.vector.SyncVectorEnv, "step"),
             "episode bookkeeping": (TrainingState, "record_step")}
    for label, (owner, name) in parts.items():
        original = getattr(owner, name)

        def wrapper(*args, _original=original, _label=label, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_label] += time.perf_counter() - started
        setattr(owner, name, wrapper)
    with tempfile.TemporaryDirectory() as folder:
        sys.argv = ["dqn-train", "experiment=minatar", f"total_steps={steps}", "eval.interval=0",
                    "eval.final_episodes=1", "log.progress=off", "checkpoint.save_replay=false",
                    f"hydra.run.dir={Path(folder) / 'run'}", *overrides]
        started = time.perf_counter()
        try:
            train_main()
        except SystemExit as stop:
            if stop.code:
                raise
        whole = time.perf_counter() - started
    learning = steps - 5000  # experiment=minatar learns from step 5,000, one update per step
    print(f"| experiment=minatar {' '.join(overrides)}, {steps:,} steps ({learning:,} updates) | seconds | per step |\n|---|---|---|")
    for label, seconds in spent.items():
        per = seconds / (learning if label.startswith(("the update", "replay sample", "prefetch")) else steps)
        print(f"| {label} | {seconds:.1f} | {per * 1e6:.0f} us |")
    rest = whole - sum(spent.values())
    print(f"| the rest (start-up, final evaluation, logging, counters) | {rest:.1f} | {rest / steps * 1e6:.0f} us |")
    print(f"| whole process | {whole:.1f} | {steps / whole:,.0f} steps/s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--run-only", action="store_true", help="skip the floor tables")
    parser.add_argument("overrides", nargs="*", help="dqn-train overrides for the timed run (compile=true)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.run_only:
        floor_table()
    timed_run(args.steps, args.overrides)


if __name__ == "__main__":
    main()
