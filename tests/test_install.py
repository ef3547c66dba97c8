"""Tier 3: the built wheel, installed into a fresh virtual environment, runs from any folder."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

from conftest import TINY

REPO = Path(__file__).resolve().parents[1]


def test_wheel_installs_into_fresh_venv_and_trains_from_unrelated_folder(tmp_path: Path):
    wheel_dir = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheel_dir), str(REPO)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheel_dir.glob("dqn_cli-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies (torch, gymnasium, hydra...) come from this test's environment so the test
    # needs no network; the project itself comes only from the wheel (--no-deps).
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300)

    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    where = subprocess.run([str(python), "-c", "import dqn_cli.hydra_errors as c; print(c.__file__); print(c.CONF_DIR)"],
                           cwd=elsewhere, check=True, capture_output=True, text=True).stdout.split()
    assert where[0].startswith(str(site)) and where[1] == str(site / "dqn_cli" / "conf")

    result = subprocess.run([str(venv / "bin" / "dqn-train"), "experiment=cartpole", *TINY], cwd=elsewhere,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (elsewhere / "outputs" / "runs").iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 600
    evaluated = subprocess.run([str(venv / "bin" / "dqn-eval"), f"run={run_dir}", "episodes=2"], cwd=elsewhere,
                               capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 0 and "over 2 greedy episodes" in evaluated.stdout, evaluated.stderr
