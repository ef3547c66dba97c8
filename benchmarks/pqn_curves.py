"""PQN on MinAtar at 10M steps: dqn-train's runs beside purejaxql's own pqn_minatar.py, per game.

    python benchmarks/pqn_curves.py --runs breakout=<run dir> breakout=<run dir> asterix=<run dir> \
        --purejaxql breakout=<curve json of benchmarks/purejaxql_pqn.py --curve> --out docs/results/pqn_minatar
    python benchmarks/pqn_curves.py --previous docs/results/pqn_minatar/pqn_minatar.json \
        --purejaxql space_invaders=<curve json> --out docs/results/pqn_minatar   # add runs to those drawn before

Draws each game's training return against env steps (dqn-train: the episodes that ended, averaged
per 200k steps, one line per seed; purejaxql: its per-update mean over its 128 envs, averaged the
same way) into <out>/curves.png, and prints a markdown table: per game and seed, the training return
over the last 5% of the steps (as purejaxql reports it), best.pt and last.pt over 100 greedy episodes,
and the whole run's wall time. Writes <out>/pqn_minatar.json with the same numbers. Never asserts.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

BIN = 200_000


def binned(steps: np.ndarray, values: np.ndarray) -> tuple:
    """Mean value per BIN env steps: (bin ends, means), empty bins and a last partial bin left out."""
    whole = steps < max(steps.max() // BIN, 1) * BIN
    steps, values = steps[whole], values[whole]
    bins = (steps // BIN).astype(int)
    ends, means = [], []
    for b in np.unique(bins):
        ends.append((b + 1) * BIN)
        means.append(values[bins == b].mean())
    return np.array(ends), np.array(means)


def last_share(steps: np.ndarray, values: np.ndarray, share: float = 0.05) -> float:
    return float(values[steps >= steps.max() * (1 - share)].mean())


def ours(run_dir: Path) -> dict:
    from dqn_cli.report.runs import read_scalars

    summary = json.loads((run_dir / "summary.json").read_text())
    steps, returns = read_scalars(run_dir, "train/episode_return")
    provenance = summary.get("provenance", {})
    return {"run_dir": run_dir.name, "seed": summary["seed"], "steps": summary["steps"],
            "training_return": round(last_share(steps, returns), 1),
            "best": summary["final_eval"]["best"], "last": summary["final_eval"]["last"],
            "wall_s": round(summary.get("total_wall_time_s") or summary["wall_time_s"]),
            "commit": provenance.get("git_commit", "")[:7] or "2026-12-03", "torch": provenance.get("torch", ""),
            "curve": [a.tolist() for a in binned(steps, returns)]}


def theirs(curve_file: Path) -> dict:
    curve = json.loads(curve_file.read_text())
    steps, returns = np.asarray(curve["env_step"]), np.asarray(curve["return"])
    log = curve_file.with_suffix(".log")
    timing = json.loads(log.read_text().strip().splitlines()[-1]) if log.is_file() else {}
    return {"seed": curve["seed"], "steps": int(steps[-1]), "training_return": round(last_share(steps, returns), 1),
            "wall_s": timing.get("wall_s"), "curve": [a.tolist() for a in binned(steps, returns)]}


def table(results: dict) -> str:
    lines = ["| game | code | seed | training return, last 5% | best.pt (100 greedy) | last.pt (100 greedy) | "
             "wall time | commit |", "|---|---|---|---|---|---|---|---|"]
    for game, runs in results.items():
        for run in runs["dqn-train"]:
            lines.append(f"| {game} | dqn-train | {run['seed']} | {run['training_return']} | "
                         f"{run['best']['mean']:.1f} ± {run['best']['std']:.1f} | "
                         f"{run['last']['mean']:.1f} ± {run['last']['std']:.1f} | {run['wall_s']:,} s | {run['commit']} |")
        for run in runs["purejaxql"]:
            wall = f"{run['wall_s']:,.0f} s" if run["wall_s"] else "-"
            lines.append(f"| {game} | purejaxql | {run['seed']} | {run['training_return']} | - | - | {wall} | - |")
    return "\n".join(lines)


def figure(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games = list(results)
    rows = -(-len(games) // 2)  # two panels a row, so each stays readable
    fig, axes = plt.subplots(rows, 2, figsize=(10, 3.8 * rows), squeeze=False)
    for ax in axes.flat[len(games):]:
        ax.axis("off")
    for ax, game in zip(axes.flat, games):
        for run in results[game]["dqn-train"]:
            ax.plot(*run["curve"], color="tab:blue", alpha=0.8, label=f"dqn-train seed {run['seed']}")
        for run in results[game]["purejaxql"]:
            ax.plot(*run["curve"], color="tab:orange", alpha=0.9, label=f"purejaxql seed {run['seed']}")
        ax.set_title(f"{game}: PQN training return")
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="*", default=[], metavar="GAME=RUN_DIR")
    parser.add_argument("--purejaxql", nargs="*", default=[], metavar="GAME=CURVE_JSON")
    parser.add_argument("--previous", type=Path, help="a pqn_minatar.json this script wrote: its runs come first "
                        "(their run dirs need not exist any more)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    results: dict = defaultdict(lambda: {"dqn-train": [], "purejaxql": []})
    if args.previous:
        results.update(json.loads(args.previous.read_text()))
    for item in args.runs:
        game, folder = item.split("=", 1)
        results[game]["dqn-train"].append(ours(Path(folder)))
    for item in args.purejaxql:
        game, curve = item.split("=", 1)
        results[game]["purejaxql"].append(theirs(Path(curve)))
    args.out.mkdir(parents=True, exist_ok=True)
    figure(results, args.out / "curves.png")
    (args.out / "pqn_minatar.json").write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
