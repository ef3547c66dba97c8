"""Run `dqn-train` once per seed as separate processes (what a user waits for) and print a table.

    python benchmarks/seeds.py                       # default CartPole, seeds 0-4
    python benchmarks/seeds.py --seeds 0 1 2 -- target=soft
    python benchmarks/seeds.py --json results.json -- experiment=lunarlander

Whole-process wall time is measured from launch to exit, so it includes start-up (imports,
config composition) and the final 100-episode evaluations. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def run_seed(seed: int, overrides: list, workdir: Path) -> dict:
    started = time.perf_counter()
    result = subprocess.run([str(BIN / "dqn-train"), f"seed={seed}", "log.progress=off", *overrides],
                            cwd=workdir, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        return {"seed": seed, "error": result.stderr.strip().splitlines()[-1:]}
    run_dir = Path(result.stdout.split("run dir: ")[1].split(" | ")[0])
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"seed": seed, "process_wall_s": round(wall, 2), "run_dir": str(run_dir), **summary}


def table(rows: list, threshold: float | None) -> str:
    lines = ["| seed | best.pt (100 ep) | last.pt (100 ep) | steps | train steps/s | wall time (process) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['seed']} | failed: {r['error']} | | | | |")
            continue
        best, last = r["final_eval"]["best"], r["final_eval"]["last"]
        lines.append(f"| {r['seed']} | {best['mean']:.1f} ± {best['std']:.1f} | {last['mean']:.1f} ± {last['std']:.1f}"
                     f" | {r['steps']:,} | {r['steps_per_second']:,.0f} | {r['process_wall_s']:.1f} s |")
    done = [r for r in rows if "error" not in r]
    if done:
        def solved(checkpoint: str):
            return sum(r["final_eval"][checkpoint]["mean"] >= threshold for r in done) if threshold is not None else "-"

        lines.append(f"| **median; solved (>= {threshold})** | {solved('best')}/{len(rows)} | "
                     f"{statistics.median(r['final_eval']['last']['mean'] for r in done):.1f}; "
                     f"{solved('last')}/{len(rows)} | | "
                     f"{statistics.median(r['steps_per_second'] for r in done):,.0f} | "
                     f"{statistics.median(r['process_wall_s'] for r in done):.1f} s |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("overrides", nargs="*", help="dqn-train overrides (after --)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dqn-bench-"))
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(seed, args.overrides, workdir))
        print(f"seed {seed}: done", file=sys.stderr)
    threshold = next((r["solve_threshold"] for r in rows if "error" not in r), None)
    print(f"dqn-train {' '.join(args.overrides) or '(defaults)'}\n")
    print(table(rows, threshold))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
