"""dqn-report: aggregate runs that differ only in seed into one honest row per configuration.

Reads run directories (runs.py) and writes report.md, report.json, learning_curves.png and
episode_returns.png (plots.py). Works on sweeps that are still running or where some runs failed,
and says which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from dqn_cli import provenance
from dqn_cli.checkpoint import atomic_write_bytes, atomic_write_json
from dqn_cli.errors import RunDirError
from dqn_cli.report.runs import Group, Run, is_run_dir, find_runs, group_runs, labelled_groups, shared_overrides
from dqn_cli.report.stats import MIN_SEEDS_FOR_CI, score_stats


def group_row(group: Group) -> dict:
    done = group.finished
    seeds = [r.seed for r in done]
    row: dict = {"configuration": group.label, "seeds": len(done), "runs": len(group.runs),
                 "failed": [str(r.path) for r in group.runs if r.status in ("failed", "broken")],
                 "incomplete": [str(r.path) for r in group.runs if r.status == "incomplete"],
                 "repeated_seeds": sorted({s for s in seeds if s is not None and seeds.count(s) > 1})}
    if not done:
        return row
    summaries = [r.summary for r in done]
    threshold = summaries[0].get("solve_threshold")
    best = [s["final_eval"]["best"]["mean"] for s in summaries]
    row.update({
        "env_id": summaries[0]["env_id"],
        "seed_list": [r.seed for r in done],
        "best": score_stats(best),
        "last": score_stats([s["final_eval"]["last"]["mean"] for s in summaries]),
        "solve_threshold": threshold,
        "solved_fraction": None if threshold is None else sum(b >= threshold for b in best) / len(best),
        "wall_time_s": float(np.mean([s["wall_time_s"] for s in summaries])),
        "steps_per_second": float(np.mean([s["steps_per_second"] for s in summaries])),
        "provenance": provenance.across([s.get("provenance") for s in summaries]),
        "mixed": provenance.mixed([s.get("provenance") for s in summaries]),
    })
    return row


def mixed_warnings(rows: List[dict]) -> List[str]:
    """A group averaged over runs that different code, libraries or devices made: say so."""
    return [f"Warning: {row['configuration']} mixes runs of different {'; '.join(row['mixed'])}; its numbers may "
            "not be comparable (see Provenance)" for row in rows if row.get("mixed")]


def provenance_lines(rows: List[dict]) -> List[str]:
    lines = ["## Provenance", "", "What produced each configuration's runs (from their summary.json):", ""]
    for row in rows:
        if row.get("provenance"):
            values = {key: " / ".join(found) for key, found in row["provenance"].items()}
            lines.append(f"- {row['configuration']}: dqn-cli {values['dqn_cli']} (git {values['git_commit']}), "
                         f"Python {values['python']}, torch {values['torch']}, gymnasium {values['gymnasium']}, "
                         f"numpy {values['numpy']}, hydra-core {values['hydra-core']}; device {values['device']} "
                         f"({values['cpu']}, torch threads: {values['torch_threads']}); host {values['hostname']}")
    return lines + [""]


def _fmt(stats: dict) -> str:
    low, high = stats["ci95"]
    interval = f"[{low:.1f}, {high:.1f}]" if len(stats["values"]) >= MIN_SEEDS_FOR_CI else \
        f"n/a ({len(stats['values'])} {'seed' if len(stats['values']) == 1 else 'seeds'}; needs {MIN_SEEDS_FOR_CI})"
    return f"{stats['mean']:.1f} ± {stats['std']:.1f} | {stats['iqm']:.1f} | {interval}"


def markdown(rows: List[dict], runs: List[Run]) -> str:
    shared = ", ".join(f"`{o}`" for o in sorted(shared_overrides(runs))) or "none"
    lines = ["# dqn-cli report", "", f"{len(runs)} runs; overrides shared by all of them: {shared}.", "",
             "Final greedy score of each run (mean over its final evaluation episodes), aggregated over "
             "seeds: mean ± std, interquartile mean (IQM) and a 95% bootstrap confidence interval of the "
             f"mean (shown from {MIN_SEEDS_FOR_CI} seeds on: with fewer it is about [min, max]).", "",
             "| configuration | env | seeds | best.pt mean ± std | best IQM | best 95% CI | last.pt mean ± std "
             "| last IQM | last 95% CI | solved | wall time | steps/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if not row["seeds"]:
            lines.append(f"| {row['configuration']} | | 0 of {row['runs']} | no finished run | | | | | | | | |")
            continue
        solved = "n/a" if row["solved_fraction"] is None else \
            f"{round(row['solved_fraction'] * row['seeds'])}/{row['seeds']} (>= {row['solve_threshold']:g})"
        lines.append(f"| {row['configuration']} | {row['env_id']} | {row['seeds']} of {row['runs']} | "
                     f"{_fmt(row['best'])} | {_fmt(row['last'])} | {solved} | {row['wall_time_s']:.1f} s | "
                     f"{row['steps_per_second']:,.0f} |")
    for row in rows:
        if row.get("repeated_seeds"):
            lines += ["", f"Warning: in {row['configuration']}, seed(s) {', '.join(map(str, row['repeated_seeds']))} "
                          "ran more than once and count as independent seeds here; same seed, same numbers."]
    lines += [line for warning in mixed_warnings(rows) for line in ("", warning)]
    problems = [r for r in runs if r.status != "finished"]
    if problems:
        lines += ["", "Runs left out:", ""]
        lines += [f"- `{r.path}`: {r.status}" + (f" ({r.error})" if r.error else "") for r in problems]
    lines += ["", "![learning curves](learning_curves.png)", "", "![episode returns](episode_returns.png)", ""]
    if len([row for row in rows if row["seeds"]]) > 1:
        few = [f"{row['configuration']} ({row['seeds']} {'seed' if row['seeds'] == 1 else 'seeds'})" for row in rows
               if 0 < row["seeds"] < MIN_SEEDS_FOR_CI]
        caveat = f" Caveat: {', '.join(few)} has fewer than {MIN_SEEDS_FOR_CI} seeds; its probabilities and " \
                 "intervals rest on too few runs to rely on." if few else ""
        lines += ["Probability of improvement and performance profiles of the final best.pt scores (95% "
                  f"stratified-bootstrap intervals; after rliable, Agarwal et al., 2021).{caveat}", "",
                  "![comparison](comparison.png)", ""]
    return "\n".join(lines + provenance_lines(rows))


def write_report(paths: Sequence[Path], out_dir: Optional[Path] = None,
                 labels: Optional[Dict[str, Path]] = None) -> Path:
    """Aggregate the runs under `paths` (or under each labelled dir, one group per label) and write
    the report files into `out_dir`."""
    from dqn_cli.report import plots  # matplotlib: only when a report is written

    groups = labelled_groups(labels) if labels else group_runs(find_runs(paths))
    runs = [run for group in groups for run in group.runs]
    if out_dir is None:
        out_dir = paths[0] if len(paths) == 1 and not labels and not is_run_dir(paths[0]) else Path("report")
    rows = [group_row(g) for g in groups]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / "report.json", {"configurations": rows, "runs": [
            {"path": str(r.path), "seed": r.seed, "status": r.status, "overrides": r.overrides, "error": r.error}
            for r in runs]})
        atomic_write_bytes(out_dir / "report.md", markdown(rows, runs).encode())
        plots.learning_curves(groups, out_dir / "learning_curves.png")
        plots.episode_returns(groups, out_dir / "episode_returns.png")
        if len([g for g in groups if g.finished]) > 1:
            plots.comparison(groups, out_dir / "comparison.png")
    except OSError as error:
        raise RunDirError(f"cannot write the report to {error.filename or out_dir}: {error.strerror or error}; "
                          "pass --out <a writable folder>") from None
    return out_dir
