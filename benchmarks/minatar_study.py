"""The MinAtar study: experiment=minatar on some games and seeds, resumable across sessions, and
its curves beside the DQN curve the MinAtar authors publish.

    python benchmarks/minatar_study.py run --out studies/minatar --games breakout space_invaders --seeds 0 1 2
    python benchmarks/minatar_study.py report --out studies/minatar --docs docs/results/minatar
    python benchmarks/minatar_study.py report --out studies/minatar --paper-code breakout=<log of its dqn.py>
    python benchmarks/minatar_study.py run --out studies/minatar_lr --games breakout --overrides optimizer.lr=0.00025
    python benchmarks/minatar_study.py report --out studies/minatar --also "lr 2.5e-4=studies/minatar_lr"
    python benchmarks/minatar_study.py figure <MinAtar repository>/img/learning_curves.gif
    python benchmarks/minatar_study.py speed                 # one update: autograd, fast learner, subnormals

`run` trains each (game, seed) in turn in <out>/<game>_seed<seed>; a run stopped by a signal, a
crash or the end of a session resumes from its last checkpoint when `run` is started again, and
a finished one is skipped. Each run trains --steps env steps (one frame each: no frame skip).
`report` draws the training return (100-episode moving average, as the paper plots it), mean over
seeds with a 95% bootstrap band, beside the published DQN values, and prints a markdown table of
the mean return of the last 100 episodes ended by each frame count. `--paper-code GAME=LOG` adds
a run of the paper's own examples/dqn.py on this machine (repeat it for several runs): the data file
it saves (`<output>_data_and_weights`), or its log, with a line `frame F episodes E mean of last 100 M`
every 100 episodes, which that file does not print by itself (add the line to run it). `--also LABEL=DIR` draws another study (say, other overrides)
beside the first. `figure` reads the published DQN values off the MinAtar repository's figure
(_FIGURE_VALUES below holds what it printed). Never asserts.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent

# The DQN curves of the MinAtar repository's img/learning_curves.gif (Young & Tian, 2019: 30 runs,
# 100-episode moving average of training returns, full action set, sticky actions), read off the
# figure's pixels by `figure` at FIGURE_FRAMES (within about 0.1 on Breakout and 0.5 on Space
# Invaders and Asterix; None where other curves hide it).
_FIGURE_VALUES = {
    "breakout": [1.2, 4.4, 5.3, 6.1, 6.8, 7.2, 7.9, 8.2, 8.3, 8.3, 8.5, 8.6, 8.5, 8.7, 8.9, 8.7, 8.7, 8.8, 9.0, 9.2,
                 9.2, 9.3, 9.3, 9.2, 9.5, 9.4, 9.6, 9.6, 9.3, 9.4, 9.5, 9.7, 9.6, 9.6, 9.6, 9.8, 9.4, 9.6, 9.6, 9.7,
                 10.0],
    "space_invaders": [9.5, 16.9, 21.2, 21.1, 21.5, 22.8, 24.2, 26.3, 28.1, 28.1, 27.2, 27.6, 26.8, 28.2, 28.4, 28.9,
                       29.5, 30.9, 32.0, 32.8, 33.6, 33.6, 34.6, 35.9, 36.2, 36.7, 37.4, 36.8, 37.9, 38.6, 38.9, 39.5,
                       40.0, 39.5, 39.8, 40.1, 40.3, 40.0, 40.0, 41.5, 43.1],
    "asterix": [None, None, 0.7, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9, 1.0, 1.1, 1.2, 1.3, 1.6, 2.0, 2.6, 3.4, 4.5, 5.9, 7.3,
                8.4, 9.3, 10.3, 11.0, 11.8, 12.0, 12.6, 12.3, 12.7, 13.0, 13.3, 13.2, 13.6, 13.5, 14.0, 13.9, 14.0,
                14.3, 14.2, 14.4, 17.3],
    "freeway": [5.6, 5.6, 5.6, 5.6, 6.3, 10.2, 16.3, 22.6, 28.8, 33.9, 37.7, 40.6, 42.7, 44.2, 45.3, 46.0, 46.5, 46.9,
                47.4, 47.8, 48.2, 48.5, 48.8, 49.0, 49.2, 49.4, 49.7, 49.9, 50.1, 50.4, 50.6, 50.7, 50.8, 50.8, 50.9,
                50.8, 50.8, 50.7, 50.7, 50.7, 50.2],
    "seaquest": [0.5, 0.5, 0.6, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 1.0, 1.0, 1.0,
                 1.0, 1.0, 1.1, 1.2, 1.2, 1.4, 1.6, 1.7, 1.8, 2.0, 2.2, 2.5, 2.7, 3.0, 3.3, 3.6, 3.9, 4.2, 4.6, 4.9,
                 20.4],
}

# Where each game's panel lies in that figure (img/learning_curves.gif, 3038 x 1629 pixels, added in
# the repository's commit 87c2bc8): the plot box in pixels (left, right, top, bottom; the x axis runs
# from 0 to 5M frames) and the y tick values from top to bottom. `figure` reads the DQN line off it.
FIGURE_PANELS = {
    "seaquest": ((614, 1311, 180, 658), [20, 15, 10, 5, 0]),
    "breakout": ((1569, 2266, 185, 663), [15, 10, 5, 0]),
    "asterix": ((106, 804, 955, 1433), [20, 15, 10, 5, 0]),
    "freeway": ((1201, 1900, 955, 1433), [50, 40, 30, 20, 10, 0]),
    "space_invaders": ((2295, 2992, 955, 1433), [200, 150, 100, 50, 0]),
}
FIGURE_DQN_COLOR = (1, 115, 178)
FIGURE_FRAMES = [*range(50_000, 2_000_001, 50_000), 5_000_000]
PUBLISHED_DQN = {game: {frames: value for frames, value in zip(FIGURE_FRAMES, values) if value is not None}
                 for game, values in _FIGURE_VALUES.items()}
TABLE_FRAMES = [250_000, 500_000, 1_000_000, 1_500_000, 2_000_000, 5_000_000]


def git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip() or "unknown"


def run(out: Path, games: list, seeds: list, steps: int, overrides: list) -> None:
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
                *overrides, f"hydra.run.dir={run_dir}"]
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
    from dqn_cli.checkpoint import training_in

    summary = run_dir / "summary.json"
    return summary.is_file() and not json.loads(summary.read_text()).get("partial") and not training_in(run_dir)


def training_curve(run_dir: Path, window: int = 100):
    """(frames, 100-episode moving average of training returns) of one run."""
    from dqn_cli.report.runs import read_scalars

    steps, returns = read_scalars(run_dir, "train/episode_return")
    if len(returns) < window:
        return np.zeros(0), np.zeros(0)
    average = np.convolve(returns, np.ones(window) / window, mode="valid")
    return steps[window - 1:], average


def last_100_mean(run_dir: Path, frames: int) -> float:
    """Mean training return of the last 100 episodes that ended at or before `frames`."""
    from dqn_cli.report.runs import read_scalars

    steps, returns = read_scalars(run_dir, "train/episode_return")
    order = np.argsort(steps, kind="stable")
    steps, returns = steps[order], returns[order]
    ended = np.searchsorted(steps, frames, side="right")
    return float(returns[max(0, ended - 100):ended].mean())


def paper_code_points(path: Path) -> dict:
    """frames -> mean of the last 100 episodes, from a run of the paper's dqn.py: its data file
    (`<output>_data_and_weights`: every episode's return and end frame), or its log, from the
    lines added to that dqn.py (every 100 episodes)."""
    if not path.name.endswith(".log"):
        import torch

        data = torch.load(path, weights_only=False, map_location="cpu")
        returns, ends = np.asarray(data["returns"], dtype=float), data["frame_stamps"]
        return {int(end): float(returns[max(0, i - 99):i + 1].mean()) for i, end in enumerate(ends)}
    points = {}
    for line in path.read_text().splitlines():
        words = line.split()
        if line.startswith("frame ") and "mean of last 100" in line:
            points[int(words[1])] = float(words[8])  # frame F episodes E mean of last 100 M ...
    return points


def paper_code_at(points: dict, frames: int) -> Optional[float]:
    before = [f for f in points if f <= frames]
    return points[max(before)] if before and max(points) >= frames - 10_000 else None


def paper_code_cell(runs: list, frames: int) -> str:
    """The paper's dqn.py at `frames`: one run's value, or several runs' mean and each run."""
    if not runs:
        return "not run"
    values = [paper_code_at(points, frames) for points in runs]
    cells = ["n/a" if v is None else f"{v:.1f}" for v in values]
    if len(runs) == 1 or None in values:
        return ", ".join(cells)
    return f"{np.mean(values):.1f} ({', '.join(cells)})"


def finished_curves(out: Path, game: str) -> list:
    """(run dir, training curve) of each finished run of a game in a study; runs still training wait."""
    run_dirs = [d for d in sorted(out.glob(f"{game}_seed*")) if finished(d)]
    return [(d, c) for d, c in ((d, training_curve(d)) for d in run_dirs) if len(c[0])]


def report(studies: dict, docs: Path, games: list, paper_code: dict) -> None:
    """studies: label -> study folder, drawn and tabulated side by side (the first one in blue)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dqn_cli.report.stats import bootstrap_ci

    docs.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(1, len(games), figsize=(5.5 * len(games), 4), squeeze=False)
    rows = []
    for axis, game in zip(axes[0], games):
        published = PUBLISHED_DQN.get(game, {})
        code = [paper_code_points(Path(log)) for log in paper_code.get(game, [])]
        last_frames = 0
        for color, (label, out) in zip(["C0", "C1", "C4"], studies.items()):
            curves = finished_curves(out, game)
            if not curves:
                continue
            grid = np.arange(50_000, min(c[0][-1] for _, c in curves) + 1, 10_000)
            last_frames = max(last_frames, grid[-1])
            matrix = np.array([np.interp(grid, frames, values) for _, (frames, values) in curves])
            band = np.array([bootstrap_ci(matrix[:, j], seed=j) for j in range(len(grid))])
            for row in matrix:
                axis.plot(grid, row, color="0.6", linewidth=0.6)
            axis.plot(grid, matrix.mean(axis=0), color=color, label=f"dqn-cli{label}, mean of {len(curves)} seeds")
            axis.fill_between(grid, band[:, 0], band[:, 1], color=color, alpha=0.25)
            # where the paper's curve lies against the band, every 10k frames from 250k on
            later = grid >= 250_000
            if published and later.any():
                paper = np.interp(grid, list(published), list(published.values()))
                below, above = (paper < band[:, 0])[later].mean(), (paper > band[:, 1])[later].mean()
                print(f"{game}{label}: from 250k frames on, the paper's curve is inside our 95% band at "
                      f"{1 - below - above:.0%} of {later.sum()} points, above it at {above:.0%}, below at {below:.0%}")
            for frames in [f for f in TABLE_FRAMES if f in published and f <= grid[-1] + 10_000]:  # ends just short
                at = np.array([last_100_mean(d, frames) for d, _ in curves])
                low, high = bootstrap_ci(at)
                rows.append(f"| {game}{label} | {frames:,} | {at.mean():.1f} [{low:.1f}, {high:.1f}] | "
                            f"{', '.join(f'{v:.1f}' for v in at)} | "
                            f"{paper_code_cell(code, frames)} | {published[frames]:.1f} |")
            for run_dir, _ in curves:
                summary_file = run_dir / "summary.json"
                if summary_file.is_file():
                    s = json.loads(summary_file.read_text())
                    print(f"{game}{label} {run_dir.name}: {s['steps']:,} steps, {s['steps_per_second']:,.0f} "
                          f"steps/s, best.pt {s['final_eval']['best']['mean']:.1f}, "
                          f"last.pt {s['final_eval']['last']['mean']:.1f}")
        if not last_frames:
            continue
        for i, points in enumerate(code):
            axis.plot(list(points), list(points.values()), color="C2", linewidth=0.8,
                      label=f"the paper's examples/dqn.py (2.5e-4) on this machine, {len(code)} run"
                      f"{'s' if len(code) > 1 else ''}" if i == 0 else None)
        if published:
            axis.plot(list(published), list(published.values()), "s--", color="C3", markersize=4,
                      label="MinAtar paper's DQN (read off its figure)")
        axis.set_xlim(0, last_frames * 1.05)
        axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e6:g}M"))
        axis.set_title(f"MinAtar {game.replace('_', ' ')}")
        axis.set_xlabel("frames (env steps)")
        axis.set_ylabel("training return, 100-episode average")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(docs / "learning_curves.png", dpi=110)
    runs = max((len(logs) for logs in paper_code.values()), default=1)
    print(f"| game | frames | dqn-cli mean [95% CI] | per seed | the paper's dqn.py here ({runs} run"
          f"{'s' if runs > 1 else ''}, 2.5e-4) "
          "| paper's figure |\n|---|---|---|---|---|---|")
    print("\n".join(rows))


def read_figure(gif: Path) -> dict:
    """game -> {frames: DQN value}, read off the MinAtar repository's learning-curve figure pixel by pixel."""
    from PIL import Image

    pixels = np.asarray(Image.open(gif).convert("RGB"), dtype=int)
    if pixels.shape[:2] != (1629, 3038):
        raise SystemExit(f"{gif}: {pixels.shape[1]} x {pixels.shape[0]} pixels; expected the 3038 x 1629 "
                         "img/learning_curves.gif of the MinAtar repository")
    dark = pixels.sum(axis=2) < 100
    dqn = np.abs(pixels - np.array(FIGURE_DQN_COLOR)).sum(axis=2) < 40
    values = {}
    for game, ((left, right, top, bottom), tick_values) in FIGURE_PANELS.items():
        tick_marks = np.flatnonzero(dark[top - 5:bottom + 5, left - 8]) + top - 5  # ticks stick out left
        tick_rows = [rows.mean() for rows in np.split(tick_marks, np.flatnonzero(np.diff(tick_marks) > 1) + 1)]
        if len(tick_rows) != len(tick_values):
            raise SystemExit(f"{gif}: found {len(tick_rows)} y ticks on the {game} panel, expected {len(tick_values)}")
        slope, intercept = np.polyfit(tick_rows, tick_values, 1)
        values[game] = {}
        for frames in FIGURE_FRAMES:
            x = min(round(left + (right - left) * frames / 5e6), right - 3)  # inside the box's frame
            for reach in range(2, 12):  # where other curves are drawn over the DQN line, look a little aside
                columns = range(x - reach, min(x + reach, right - 3) + 1)
                rows = np.concatenate([np.flatnonzero(dqn[top + 3:bottom - 2, c]) + top + 3 for c in columns])
                if len(rows):
                    values[game][frames] = round(float(slope * rows.mean() + intercept), 1)
                    break
    return values


def update_ms(fast: bool, repeats: int = 1000) -> float:
    """Milliseconds per update of the paper's network (batch 32, centered RMSProp) on MinAtar-like
    sparse bool grids."""
    import time

    import torch

    from dqn_cli.agent import DQNAgent
    from dqn_cli.config import HardTargetConfig, RMSpropConfig, TrainConfig
    from dqn_cli.networks import NatureCNN, small_image_cnn
    from dqn_cli.replay import Batch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = TrainConfig(optimizer=RMSpropConfig(lr=2.5e-4, alpha=0.95, eps=0.01, centered=True),
                      target=HardTargetConfig(), gamma=0.99)
    agent = DQNAgent(NatureCNN((10, 10, 4), np.bool_, 6, small_image_cnn("relu")), cfg, torch.device("cpu"),
                     fast_learner=fast)
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

    from dqn_cli.run import train as core
    from dqn_cli.compose import register_schemas, typed_config

    from hydra import compose, initialize_config_dir
    from dqn_cli.hydra_errors import CONF_DIR

    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = typed_config(compose(config_name="config", overrides=[
            "experiment=minatar", f"total_steps={steps}", "eval.interval=0", "eval.final_episodes=1",
            "log.progress=off", "checkpoint.save_replay=false"]))
    original = core.subnormals_flushed
    if not flush:
        core.subnormals_flushed = contextlib.nullcontext
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            return core.train(cfg, Path(run_dir))["steps_per_second"]
    finally:
        core.subnormals_flushed = original


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
    run_parser.add_argument("--overrides", nargs="*", default=[], metavar="KEY=VALUE",
                            help="more dqn-train overrides for new runs, e.g. optimizer.lr=0.001953125")
    report_parser = commands.add_parser("report")
    report_parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "results" / "minatar")
    report_parser.add_argument("--label", default="", help="what sets the --out study apart, e.g. 'lr 2^-9'")
    report_parser.add_argument("--also", nargs="*", default=[], metavar="LABEL=DIR",
                               help="another study of the same games (other overrides), drawn and tabulated beside")
    report_parser.add_argument("--paper-code", nargs="*", default=[], metavar="GAME=LOG",
                               help="a log of the paper's examples/dqn.py run on this machine, per game")
    commands.add_parser("speed", help="time one update of the paper's network")
    figure_parser = commands.add_parser("figure", help="read the DQN curves off the MinAtar repository's figure")
    figure_parser.add_argument("gif", type=Path, help="its img/learning_curves.gif")
    for sub in (run_parser, report_parser):
        sub.add_argument("--out", type=Path, required=True)
        sub.add_argument("--games", nargs="+", default=["breakout", "space_invaders"])
    args = parser.parse_args()
    if args.command == "run":
        run(args.out, args.games, args.seeds, args.steps, args.overrides)
    elif args.command == "report":
        studies = {f" ({args.label})" if args.label else "": args.out,
                   **{f" ({label})": Path(folder) for label, folder in (item.split("=", 1) for item in args.also)}}
        paper_code: dict = {}
        for item in args.paper_code:  # GAME=LOG, repeated for several runs of a game
            game, log = item.split("=", 1)
            paper_code.setdefault(game, []).append(log)
        report(studies, args.docs, args.games, paper_code)
    elif args.command == "figure":
        for game, values in read_figure(args.gif).items():
            print(f"{game}: " + ", ".join(f"{frames:,}: {value}" for frames, value in values.items()))
    else:
        speed()


if __name__ == "__main__":
    main()
