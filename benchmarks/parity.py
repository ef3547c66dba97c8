"""The classic-control parity table: ten seeds of each preset beside RL Zoo's and CleanRL's published
DQN results, and one figure of the four tasks' learning curves.

    dqn-train -m +sweep=seeds10 hydra/launcher=basic hydra.sweep.dir=outputs/sweeps/cartpole
    dqn-train -m experiment=acrobot +sweep=seeds10 ... hydra.sweep.dir=outputs/sweeps/acrobot   (and so on)
    python benchmarks/parity.py cartpole=outputs/sweeps/cartpole acrobot=outputs/sweeps/acrobot \
        mountaincar=outputs/sweeps/mountaincar lunarlander=outputs/sweeps/lunarlander --out docs/results/parity

Per task: the IQM of best.pt and of last.pt (each run's mean over 100 greedy episodes) with a 95%
bootstrap interval of the IQM, mean ± std, the solved fraction and the median wall time per run.
Prints the table (Markdown) and writes parity.json and curves.png into --out (no .md there: docs/
is the site's source, and the table goes into docs/results.md). Never asserts on anything.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from dqn_cli.report.runs import find_runs, read_scalars
from dqn_cli.report.stats import bootstrap_interval, iqm

# Published DQN anchors (mean ± std of the final policy): RL Zoo's benchmark table (one tuned run each, at
# the budget beside it) and CleanRL's dqn.py docs (500k steps, several seeds).
ANCHORS = {
    "cartpole": {"env": "CartPole-v1", "zoo": (500.0, 0.0), "zoo_steps": 50_000, "cleanrl": (488.7, 16.1)},
    "acrobot": {"env": "Acrobot-v1", "zoo": (-76.6, 11.8), "zoo_steps": 100_000, "cleanrl": (-91.5, 7.2)},
    "mountaincar": {"env": "MountainCar-v0", "zoo": (-100.8, 9.9), "zoo_steps": 120_000, "cleanrl": (-194.95, 8.48)},
    "lunarlander": {"env": "LunarLander-v3", "zoo": (154.4, 79.2), "zoo_steps": 100_000, "cleanrl": None},
}


def task_row(task: str, sweep: Path) -> dict:
    runs = [run for run in find_runs([sweep]) if run.status == "finished"]
    summaries = [run.summary for run in runs]
    row = {"task": task, "sweep": str(sweep), "seeds": len(runs), **ANCHORS[task],
           "steps": max(s["budget"]["total"] for s in summaries),
           "threshold": summaries[0]["solve_threshold"],
           "median_wall_time_s": statistics.median(s["wall_time_s"] for s in summaries),
           "commit": sorted({(s.get("provenance") or {}).get("git_commit") or "?" for s in summaries})}
    for name in ("best", "last"):
        scores = [s["final_eval"][name]["mean"] for s in summaries]
        row[name] = {"scores": scores, "iqm": iqm(scores), "iqm_ci95": bootstrap_interval(iqm, [scores], seed=1),
                     "mean": float(np.mean(scores)), "std": float(np.std(scores)),
                     "solved": sum(score >= row["threshold"] for score in scores)}
    return row


def markdown(rows: list) -> str:
    lines = ["| task (steps) | best.pt IQM [95% CI] | best.pt mean ± std | last.pt IQM [95% CI] | last.pt mean ± std "
             "| solved (best / last) | wall time per run (median) | RL Zoo DQN | CleanRL dqn.py (500k) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = []
        for name in ("best", "last"):
            stats = row[name]
            low, high = stats["iqm_ci95"]
            cells += [f"{stats['iqm']:.1f} [{low:.1f}, {high:.1f}]", f"{stats['mean']:.1f} ± {stats['std']:.1f}"]
        zoo, cleanrl = row["zoo"], row["cleanrl"]
        lines.append(f"| {row['env']} ({row['steps']:,}) | {' | '.join(cells)} | {row['best']['solved']}/{row['seeds']} / "
                     f"{row['last']['solved']}/{row['seeds']} (>= {row['threshold']:g}) | {row['median_wall_time_s']:.0f} s "
                     f"| {zoo[0]:.1f} ± {zoo[1]:.1f} ({row['zoo_steps']:,}) | "
                     + (f"{cleanrl[0]:.1f} ± {cleanrl[1]:.1f} |" if cleanrl else "- |"))
    return "\n".join(lines) + "\n"


def figure(rows: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    for axis, row in zip(axes.flat, rows):
        curves = [read_scalars(run.path, "eval/mean_return") for run in find_runs([Path(row["sweep"])])
                  if run.status == "finished"]
        # A run that stopped when solved holds its last score at the steps it did not train.
        every = sorted(set().union(*(s.tolist() for s, _ in curves)))
        matrix = np.array([[dict(zip(s.tolist(), v)).get(step, v[s <= step][-1] if (s <= step).any() else np.nan)
                            for step in every] for s, v in curves])
        mean = np.nanmean(matrix, axis=0)
        band = np.array([bootstrap_interval(np.mean, [matrix[:, j][~np.isnan(matrix[:, j])]], samples=1000, seed=j)
                         for j in range(len(every))])
        axis.plot(every, mean, color="C0", label=f"dqn-cli, {row['seeds']} seeds (mean, 95% bootstrap band)")
        axis.fill_between(every, band[:, 0], band[:, 1], color="C0", alpha=0.25)
        axis.axhline(row["zoo"][0], color="C3", linestyle="--", linewidth=1, label="RL Zoo DQN (one run)")
        if row["cleanrl"]:
            axis.axhline(row["cleanrl"][0], color="C2", linestyle=":", linewidth=1.2, label="CleanRL dqn.py (500k steps)")
        axis.set_title(f"{row['env']}, {row['steps']:,} steps")
        axis.set_xlabel("environment steps")
        axis.set_ylabel("greedy evaluation return")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweeps", nargs="+", metavar="TASK=DIR", help=f"tasks: {', '.join(ANCHORS)}")
    parser.add_argument("--out", type=Path, default=Path("parity"))
    args = parser.parse_args()
    rows = [task_row(task, Path(folder)) for task, _, folder in (s.partition("=") for s in args.sweeps)]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "parity.json").write_text(json.dumps(rows, indent=1) + "\n")
    figure(rows, args.out / "curves.png")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
