"""The MinAtar study: experiment=minatar on some games and seeds, resumable across sessions, and
its curves beside the DQN curve the MinAtar authors publish.

    python benchmarks/minatar_study.py run --out studies/minatar --games breakout space_invaders --seeds 0 1 2
    python benchmarks/minatar_study.py report --out studies/minatar --docs docs/results/minatar
    python benchmarks/minatar_study.py report --out studies/minatar --paper-code breakout=<log of its dqn.py>
    python benchmarks/minatar_study.py speed                 # one update: autograd, fast learner, subnormals

`run` trains each (game, seed) in turn in <out>/<game>_seed<seed>; a run stopped by a signal, a
crash or the end of a session resumes from its last checkpoint when `run` is started again, and
a finished one is skipped. Each run trains --steps env steps (one frame each: no frame skip).
`report` draws the training return (100-episode moving average, as the paper plots it), mean over
seeds with a 95% bootstrap band, beside the published DQN values, and prints a markdown table of
the mean return of the last 100 episodes ended by each frame count. `--paper-code GAME=LOG` adds
a run of the paper's own examples/dqn.py on this machine (its log, with a line
`frame F episodes E mean of last 100 M` every 100 episodes, which that file does not print by
itself: add the line to run it). Never asserts.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent

# The DQN curves of the MinAtar repository's img/learning_curves.gif (Young & Tian, 2019: 30 runs,
# 100-episode moving average of training returns, full action set, sticky actions), read off the
# figure by eye at these frame counts; about +-0.5 (Breakout) and +-2 (Space Invaders, Asterix).
PUBLISHED_DQN = {
    "breakout": {250_000: 7.2, 500_000: 8.4, 1_000_000: 9.3, 2_000_000: 9.8, 5_000_000: 10.0},
    "space_invaders": {250_000: 22.0, 500_000: 29.0, 1_000_000: 34.0, 2_000_000: 40.0, 5_000_000: 43.0},
    "asterix": {500_000: 1.0, 1_000_000: 10.0, 2_000_000: 14.0, 5_000_000: 17.0},
}


def git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip() or "unknown"


def run(out: Path, games: list, seeds: list, steps: int) -> None:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    for game in games:
        for seed in seeds:
            run_dir = out / f"{game}_seed{seed}"
            if finished(run_dir):
                print(f"{run_dir.name}: finished", file=sys.stderr)
                continue
            resuming = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").glob("step_*.pt"))
            args = [f"resume={run_dir}"] if resuming else [
                "experiment=minatar", f"env=minatar_{game}", f"seed={seed}", f"total_steps={steps}",
                f"hydra.run.dir={run_dir}"]
            command = [str(BIN / "dqn-train"), *args, "log.progress=lines", "log.console_interval_s=60"]
            if not resuming:
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "provenance.json").write_text(json.dumps({
                    "commit": git_commit(), "torch": torch.__version__, "python": platform.python_version(),
                    "command": " ".join(["dqn-train", *args[:-1]])}, indent=2))
            print(f"{run_dir.name}: {'resuming' if resuming else 'starting'}", file=sys.stderr, flush=True)
            with open(out / f"{run_dir.name}.log", "a") as log:
                subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)


def finished(run_dir: Path) -> bool:
    summary = run_dir / "summary.json"
    return summary.is_file() and not json.loads(summary.read_text()).get("partial")


def training_curve(run_dir: Path, window: int = 100):
    """(frames, 100-episode moving average of training returns) of one run."""
    from dqn_cli.report import read_scalars

    steps, returns = read_scalars(run_dir, "train/episode_return")
    if len(returns) < window:
        return np.zeros(0), np.zeros(0)
    average = np.convolve(returns, np.ones(window) / window, mode="valid")
    return steps[window - 1:], average


def last_100_mean(run_dir: Path, frames: int) -> float:
    """Mean training return of the last 100 episodes that ended at or before `frames`."""
    from dqn_cli.report import read_scalars

    steps, returns = read_scalars(run_dir, "train/episode_return")
    order = np.argsort(steps, kind="stable")
    steps, returns = steps[order], returns[order]
    ended = np.searchsorted(steps, frames, side="right")
    return float(returns[max(0, ended - 100):ended].mean())


def paper_code_points(log: Path) -> dict:
    """frames -> mean of the last 100 episodes, from the lines added to the paper's dqn.py."""
    points = {}
    for line in log.read_text().splitlines():
        words = line.split()
        if line.startswith("frame ") and "mean of last 100" in line:
            points[int(words[1])] = float(words[8])  # frame F episodes E mean of last 100 M ...
    return points


def paper_code_at(points: dict, frames: int) -> str:
    before = [f for f in points if f <= frames]
    return f"{points[max(before)]:.1f}" if before and max(points) >= frames - 10_000 else "n/a"


def report(out: Path, docs: Path, games: list, paper_code: dict) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dqn_cli.report import bootstrap_ci

    docs.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(1, len(games), figsize=(5.5 * len(games), 4), squeeze=False)
    rows = []
    for axis, game in zip(axes[0], games):
        run_dirs = [d for d in sorted(out.glob(f"{game}_seed*")) if finished(d)]  # runs still training wait
        curves = [training_curve(d) for d in run_dirs]
        curves = [(d, c) for d, c in zip(run_dirs, curves) if len(c[0])]
        if not curves:
            continue
        grid = np.arange(50_000, min(c[0][-1] for _, c in curves) + 1, 10_000)
        matrix = np.array([np.interp(grid, frames, values) for _, (frames, values) in curves])
        band = np.array([bootstrap_ci(matrix[:, j], seed=j) for j in range(len(grid))])
        for row in matrix:
            axis.plot(grid, row, color="0.6", linewidth=0.6)
        axis.plot(grid, matrix.mean(axis=0), color="C0", label=f"dqn-cli, mean of {len(curves)} seeds")
        axis.fill_between(grid, band[:, 0], band[:, 1], color="C0", alpha=0.25)
        code = paper_code_points(Path(paper_code[game])) if game in paper_code else {}
        if code:
            axis.plot(list(code), list(code.values()), color="C2", linewidth=0.8,
                      label="the paper's examples/dqn.py on this machine, 1 run")
        published = PUBLISHED_DQN.get(game, {})
        if published:
            axis.plot(list(published), list(published.values()), "s--", color="C3", markersize=4,
                      label="MinAtar paper's DQN (read off its figure)")
        axis.set_xlim(0, grid[-1] * 1.05)
        axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e6:g}M"))
        axis.set_title(f"MinAtar {game.replace('_', ' ')}")
        axis.set_xlabel("frames (env steps)")
        axis.set_ylabel("training return, 100-episode average")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
        for frames in [f for f in published if f <= grid[-1] + 10_000]:  # the last episode ends just short of it
            at = np.array([last_100_mean(d, frames) for d, _ in curves])
            low, high = bootstrap_ci(at)
            rows.append(f"| {game} | {frames:,} | {at.mean():.1f} [{low:.1f}, {high:.1f}] | "
                        f"{', '.join(f'{v:.1f}' for v in at)} | {paper_code_at(code, frames) if code else 'not run'} | "
                        f"{published[frames]:.1f} |")
        for run_dir, _ in curves:
            summary_file = run_dir / "summary.json"
            if summary_file.is_file():
                s = json.loads(summary_file.read_text())
                print(f"{run_dir.name}: {s['steps']:,} steps, {s['steps_per_second']:,.0f} steps/s, best.pt "
                      f"{s['final_eval']['best']['mean']:.1f}, last.pt {s['final_eval']['last']['mean']:.1f}")
    figure.tight_layout()
    figure.savefig(docs / "learning_curves.png", dpi=110)
    print("| game | frames | dqn-cli mean [95% CI] | per seed | the paper's dqn.py here (1 run) | paper's figure |\n"
          "|---|---|---|---|---|---|")
    print("\n".join(rows))


def update_ms(fast: bool, repeats: int = 1000) -> float:
    """Milliseconds per update of the paper's network (batch 32, centered RMSProp) on MinAtar-like
    sparse bool grids."""
    import time

    import torch

    from dqn_cli.agent import DQNAgent
    from dqn_cli.config import HardTargetConfig, RMSpropConfig
    from dqn_cli.networks import NatureCNN, small_image_cnn
    from dqn_cli.replay import Batch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    agent = DQNAgent(NatureCNN((10, 10, 4), np.bool_, 6, small_image_cnn("relu")),
                     RMSpropConfig(lr=2.5e-4, alpha=0.95, eps=0.01, centered=True), HardTargetConfig(), 0.99,
                     "huber", False, torch.device("cpu"), fast_learner=fast)
    generator = torch.Generator().manual_seed(0)
    grid = lambda: (torch.rand(32, 10, 10, 4, generator=generator) < 0.05).float()  # noqa: E731
    batches = [Batch(grid(), torch.randint(0, 6, (32,), generator=generator), torch.rand(32, generator=generator),
                     grid(), torch.zeros(32)) for _ in range(50)]
    for i in range(100):
        agent.learn(batches[i % 50])
    started = time.perf_counter()
    for i in range(repeats):
        agent.learn(batches[i % 50])
    return (time.perf_counter() - started) / repeats * 1e3


def run_steps_per_second(flush: bool, steps: int = 30_000) -> float:
    """Training steps/s of a whole experiment=minatar run (Breakout), subnormals flushed or kept."""
    import contextlib
    import tempfile

    from dqn_cli import loop
    from dqn_cli.cli import register_schemas, typed_config

    from hydra import compose, initialize_config_dir
    from dqn_cli.hydra_errors import CONF_DIR

    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = typed_config(compose(config_name="config", overrides=[
            "experiment=minatar", f"total_steps={steps}", "eval.interval=0", "eval.final_episodes=1",
            "log.progress=off", "checkpoint.save_replay=false"]))
    original = loop.subnormals_flushed
    if not flush:
        loop.subnormals_flushed = contextlib.nullcontext
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            return loop.train(cfg, Path(run_dir))["steps_per_second"]
    finally:
        loop.subnormals_flushed = original


def speed() -> None:
    print("| one update (batch 32) | autograd | FastCNNLearner |\n|---|---|---|")
    print(f"| ms | {update_ms(False):.2f} | {update_ms(True):.2f} |", flush=True)
    print("\n| experiment=minatar, 30k steps | subnormals kept | subnormals flushed to zero |\n|---|---|---|")
    rates = [run_steps_per_second(flush) for flush in (False, True)]
    print(f"| training steps/s | {rates[0]:,.0f} | {rates[1]:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    run_parser.add_argument("--steps", type=int, default=1_000_000)
    report_parser = commands.add_parser("report")
    report_parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "results" / "minatar")
    report_parser.add_argument("--paper-code", nargs="*", default=[], metavar="GAME=LOG",
                               help="a log of the paper's examples/dqn.py run on this machine, per game")
    commands.add_parser("speed", help="time one update of the paper's network")
    for sub in (run_parser, report_parser):
        sub.add_argument("--out", type=Path, required=True)
        sub.add_argument("--games", nargs="+", default=["breakout", "space_invaders"])
    args = parser.parse_args()
    if args.command == "run":
        run(args.out, args.games, args.seeds, args.steps)
    elif args.command == "report":
        report(args.out, args.docs, args.games, dict(item.split("=", 1) for item in args.paper_code))
    else:
        speed()


if __name__ == "__main__":
    main()
