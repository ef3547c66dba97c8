"""Reproduce the reference documents' experiments: each reference preset at full length on 5 seeds,
then a table (per seed: best.pt and last.pt over 100 greedy episodes) and the mean training curve
per episode with a 95% bootstrap band, beside what each document reports.

    python benchmarks/references.py run --out studies/references       # about an hour on 2 cores
    python benchmarks/references.py report --runs studies/references --docs docs/results/references

`run` records the commit, torch version and command of each sweep in provenance.json; `report`
writes one PNG per preset and prints the markdown tables for docs/results.md. Never asserts.
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
SMOOTHING = 20  # episodes per point of the plotted curves

# What each document reports, in its own words (the documents give figures and animations, not tables).
DOCUMENTS = {
    "book_cartpole_v0": dict(
        source="the book chapter on DQN (CartPole-v0)", line=200.0,
        reports="its curve averages 100 runs and climbs from about episode 50; a greedy test episode after "
                "training scored 116"),
    "book_cartpole": dict(
        source="the book chapter on value-based agents and the blog post with the same loop", line=500.0,
        reports="an animation of the trained agent keeping the pole up, and scores printed every 20 episodes "
                "(no numbers given)"),
    "pytorch_tutorial": dict(
        source="the PyTorch DQN tutorial", line=500.0,
        reports="over 600 episodes the durations should consistently reach 500 steps"),
    "lunarlander_article": dict(
        source="the LunarLander DQN article", line=200.0,
        reports="after 1,000 episodes, a clear improvement over the first episodes but no finished landing "
                "policy (animations, no numbers)"),
}
PRESETS = list(DOCUMENTS)


def git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip() or "unknown"


def run(out: Path, presets: list, seeds: str) -> None:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    for preset in presets:
        command = [str(BIN / "dqn-train"), "-m", f"experiment={preset}", f"seed={seeds}", "hydra/launcher=basic",
                   "log.progress=off", f"hydra.sweep.dir={out / preset}"]
        provenance = {"commit": git_commit(), "torch": torch.__version__, "python": platform.python_version(),
                      "command": " ".join(["dqn-train", *command[1:-1]])}
        subprocess.run(command, check=True, capture_output=True)
        (out / preset / "provenance.json").write_text(json.dumps(provenance, indent=2))
        print(f"{preset}: done", file=sys.stderr)


def episode_matrix(runs: list) -> np.ndarray:
    """Training returns, one row per seed, cut to the episodes every seed finished."""
    from dqn_cli.report.runs import read_scalars

    curves = [read_scalars(r.path, "train/episode_return")[1] for r in runs]
    length = min(len(c) for c in curves)
    return np.array([c[:length] for c in curves])


def smoothed(matrix: np.ndarray, window: int = SMOOTHING) -> np.ndarray:
    kernel = np.ones(window) / window
    return np.array([np.convolve(row, kernel, mode="valid") for row in matrix])


def figure(preset: str, runs: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dqn_cli.report.stats import bootstrap_ci

    matrix = episode_matrix(runs)
    curves = smoothed(matrix)
    episodes = np.arange(SMOOTHING, matrix.shape[1] + 1)
    mean = curves.mean(axis=0)
    band = np.array([bootstrap_ci(curves[:, j], seed=j) for j in range(curves.shape[1])])
    doc = DOCUMENTS[preset]
    fig, axis = plt.subplots(figsize=(8, 4.5))
    for row in curves:
        axis.plot(episodes, row, color="0.6", linewidth=0.6, alpha=0.6)
    axis.plot(episodes, mean, color="C0", linewidth=1.8, label=f"mean of {len(runs)} seeds")
    axis.fill_between(episodes, band[:, 0], band[:, 1], color="C0", alpha=0.25, label="95% bootstrap CI")
    axis.axhline(doc["line"], color="C3", linestyle="--", linewidth=1, label=f"{doc['line']:g}")
    axis.set_xlabel("episodes")
    axis.set_ylabel(f"training return ({SMOOTHING}-episode average)")
    env = runs[0].summary["env_id"]
    axis.set_title(f"experiment={preset} ({env}), {len(runs)} seeds\nthe document: {doc['reports']}",
                   fontsize=8)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def table(preset: str, runs: list, provenance: dict) -> str:
    lines = [f"`{provenance.get('command', 'dqn-train -m experiment=' + preset + ' +sweep=seeds5')}` "
             f"(commit {provenance.get('commit', '?')}, torch {provenance.get('torch', '?')})", "",
             "| seed | best.pt (100 ep) | last.pt (100 ep) | episodes | steps | wall time |", "|---|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: r.seed):
        s = r.summary
        best, last = s["final_eval"]["best"], s["final_eval"]["last"]
        lines.append(f"| {r.seed} | {best['mean']:.1f} ± {best['std']:.1f} | {last['mean']:.1f} ± {last['std']:.1f} | "
                     f"{s['episodes']:,} | {s['steps']:,} | {s['wall_time_s']:.0f} s |")
    bests = [r.summary["final_eval"]["best"]["mean"] for r in runs]
    lasts = [r.summary["final_eval"]["last"]["mean"] for r in runs]
    lines.append(f"| **mean ± std** | {np.mean(bests):.1f} ± {np.std(bests):.1f} | {np.mean(lasts):.1f} ± "
                 f"{np.std(lasts):.1f} | | | |")
    matrix = episode_matrix(runs)
    last_100 = matrix[:, -100:].mean(axis=1)
    lines += ["", f"Training return over the last 100 episodes (epsilon-greedy, as the document measures): "
                  f"{last_100.mean():.1f} ± {last_100.std():.1f} (per seed: "
                  f"{', '.join(f'{v:.1f}' for v in last_100)}). The document: {DOCUMENTS[preset]['reports']}."]
    return "\n".join(lines)


def report(runs_dir: Path, docs_dir: Path, presets: list) -> None:
    from dqn_cli.report.runs import find_runs

    docs_dir.mkdir(parents=True, exist_ok=True)
    for preset in presets:
        sweep = runs_dir / preset
        if not sweep.is_dir():
            print(f"{preset}: no runs under {sweep}", file=sys.stderr)
            continue
        runs = [r for r in find_runs([sweep]) if r.status == "finished"]
        provenance_file = sweep / "provenance.json"
        provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}
        figure(preset, runs, docs_dir / f"{preset}.png")
        print(f"### {preset}\n\n{table(preset, runs, provenance)}\n\n![{preset}](results/references/{preset}.png)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="train every preset on the seeds")
    run_parser.add_argument("--out", type=Path, required=True)
    run_parser.add_argument("--seeds", default="0,1,2,3,4")
    report_parser = commands.add_parser("report", help="tables and figures from finished runs")
    report_parser.add_argument("--runs", type=Path, required=True)
    report_parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "results" / "references")
    for sub in (run_parser, report_parser):
        sub.add_argument("--presets", nargs="+", default=PRESETS, choices=PRESETS)
    args = parser.parse_args()
    if args.command == "run":
        run(args.out, args.presets, args.seeds)
    else:
        report(args.runs, args.docs, args.presets)


if __name__ == "__main__":
    main()
