"""Training curves of Atari runs side by side, against env steps and against wall-clock time, from
their TensorBoard event files (a run dir or one events file each).

    python benchmarks/pong_curves.py --runs "eager=docs/results/gpu-h200/pong_eager.tfevents" \
        "CUDA graph=docs/results/gpu-h200/pong_graph.tfevents" --out docs/results/gpu-h200/pong_graph_curve.png

Left: the mean return of the last 100 training games; right: the same against minutes since the
run's first event. Greedy evaluations are marked where the runs logged them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def load(events: str) -> EventAccumulator:
    accumulator = EventAccumulator(events, size_guidance={"scalars": 0})
    accumulator.Reload()
    return accumulator


def scalars(accumulator: EventAccumulator, tag: str) -> tuple:
    points = accumulator.Scalars(tag)
    return (np.array([p.step for p in points]), np.array([p.value for p in points]),
            np.array([p.wall_time for p in points]))


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="label=events file or run dir (the last = splits)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--window", type=int, default=100, help="training games in the moving mean")
    args = parser.parse_args()

    figure, (by_steps, by_time) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for label, events in (run.rsplit("=", 1) for run in args.runs):
        accumulator = load(events)
        started = accumulator.FirstEventTimestamp()  # the writer opens before the first env step
        steps, returns, wall = scalars(accumulator, "train/episode_return")
        window = min(args.window, len(returns))
        mean = np.convolve(returns, np.ones(window) / window, mode="valid")
        line, = by_steps.plot(steps[window - 1:], mean, label=label)
        by_time.plot((wall[window - 1:] - started) / 60, mean, color=line.get_color(), label=label)
        eval_steps, eval_returns, eval_wall = scalars(accumulator, "eval/mean_return")
        by_steps.plot(eval_steps, eval_returns, "o", color=line.get_color(), markersize=4)
        by_time.plot((eval_wall - started) / 60, eval_returns, "o", color=line.get_color(), markersize=4)
    by_steps.set_xlabel("environment steps")
    by_time.set_xlabel("minutes of training")
    by_steps.set_ylabel(f"return, mean of the last {args.window} training games (dots: greedy evaluations)")
    for axis in (by_steps, by_time):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
