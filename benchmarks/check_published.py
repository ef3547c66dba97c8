"""Re-run one row of every published results table and compare it with the published numbers.

    python benchmarks/check_published.py --list             # the tables and the row each one checks
    python benchmarks/check_published.py                    # re-run them all (about 15 minutes on 2 cores)
    python benchmarks/check_published.py --only cartpole-default lunarlander

The rows live in docs/results/published.json: per table, the exact dqn-train command, the seed,
the commit and torch version that produced it, and best.pt / last.pt over 100 greedy episodes as
published (rounded to 0.1). Learning numbers are deterministic for a given torch build and CPU
architecture, so a row either matches to the printed digit or its table no longer describes the
code: then re-run the table, or mark it. Exits 1 when a row differs. Run by hand, never in CI.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "docs" / "results" / "published.json"
BIN = Path(sys.executable).parent


def rerun(row: dict, workdir: Path) -> dict:
    """Run the row's command for its seed; returns summary.json."""
    command = row["command"].split()
    assert command[0] == "dqn-train", command
    result = subprocess.run([str(BIN / "dqn-train"), *command[1:], f"seed={row['seed']}", "log.progress=off"],
                            cwd=workdir, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed")
    run_dir = Path(result.stdout.split("run dir: ")[1].split(" | ")[0])
    return json.loads((run_dir / "summary.json").read_text())


def compare(row: dict, summary: dict) -> list:
    """The published numbers that the re-run does not reproduce, as 'name: published -> now'."""
    differences = []
    for name in ("best", "last"):
        published, now = row[name], round(summary["final_eval"][name]["mean"], 1)
        if abs(published - now) > 0.06:  # published to 0.1, some from two decimals
            differences.append(f"{name}.pt {published} -> {now}")
    return differences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", help="table names (see --list)")
    parser.add_argument("--list", action="store_true", help="list the tables and exit")
    args = parser.parse_args()
    rows = json.loads(PUBLISHED.read_text())["tables"]
    if args.list:
        for row in rows:
            print(f"{row['name']:24} seed {row['seed']}: {row['command']}  ({row['where']}; commit {row['commit']}, "
                  f"torch {row['torch']})")
        return 0
    unknown = set(args.only or ()) - {row["name"] for row in rows}
    if unknown:
        parser.error(f"no published table named {', '.join(sorted(unknown))}; see --list")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="dqn-check-") as workdir:
        for row in rows:
            if args.only and row["name"] not in args.only:
                continue
            try:
                differences = compare(row, rerun(row, Path(workdir)))
            except RuntimeError as error:
                differences = [f"the run failed: {error}"]
            failed += bool(differences)
            verdict = "matches" if not differences else "DIFFERS: " + "; ".join(differences)
            print(f"{row['name']:24} seed {row['seed']} {verdict}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
