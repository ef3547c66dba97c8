"""What produced a run: the code, the libraries, the machine and the command. summary.json,
TensorBoard's TEXT tab, the tracker's params and dqn-eval's results each carry this block, so a
report can say when it averages runs that different code or devices made."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

LIBRARIES = ("torch", "gymnasium", "numpy", "hydra-core")

# What makes two runs' numbers incomparable: a report warns when a group mixes any of these.
MUST_MATCH = ("dqn_cli", "git_commit", "torch", "device")


def _version(distribution: str) -> Optional[str]:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def git_state(source: Path) -> Dict[str, Any]:
    """The commit the code runs from and whether tracked files differ from it; nothing when the
    code is an installed package rather than a checkout (or git is missing)."""
    if not (source / ".git").exists():
        return {"git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        status = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    if commit.returncode != 0:
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit.stdout.strip(), "git_dirty": bool(status.stdout.strip())}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """'cpu', or the accelerator's own name ('cuda: NVIDIA H200'), so runs on different GPUs differ."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return device.type


def command_line(argv: Sequence[str], overrides: Sequence[str]) -> str:
    """The command as typed (a console script by its name), or the API call for a Python caller."""
    program = Path(argv[0]).name if argv else ""
    if program.startswith("dqn-"):
        return shlex.join([program, *argv[1:]])
    return f"dqn_cli.train({list(overrides)!r})"


def collect(device: torch.device, overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """This process's provenance block."""
    return {
        "dqn_cli": _version("dqn-cli"),
        **git_state(Path(__file__).resolve().parent.parent),
        "python": platform.python_version(),
        **{name: _version(name) for name in LIBRARIES},
        # With its build (+cpu, +cu130): PyPI's CUDA wheel's metadata leaves it out, and builds differ in kernels.
        "torch": torch.__version__,
        "device": device_name(device),
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "hostname": socket.gethostname(),
        "command": command_line(sys.argv, overrides),
        "cwd": os.getcwd(),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **slurm_job(),
    }


def slurm_job() -> Dict[str, Any]:
    """Under SLURM: the job id (an array job's own, e.g. 41_3) and how often it was requeued."""
    job = os.environ.get("SLURM_JOB_ID")
    if job is None:
        return {}
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return {"slurm_job_id": f"{array}_{task}" if array and task else job,
            "slurm_restart_count": int(os.environ.get("SLURM_RESTART_COUNT") or 0)}


def describe(provenance: Dict[str, Any]) -> str:
    """One line: 'dqn-cli 0.1.0 (git 67d3345, dirty), torch 2.13.0, ... on cpu (Intel ...), host x'."""
    commit = provenance.get("git_commit")
    code = f"dqn-cli {provenance.get('dqn_cli')}" + (
        f" (git {commit[:7]}{', dirty' if provenance.get('git_dirty') else ''})" if commit else "")
    libraries = ", ".join(f"{name} {provenance.get(name)}" for name in ("python", *LIBRARIES))
    return (f"{code}, {libraries}; {provenance.get('device')} ({provenance.get('cpu')}, "
            f"{provenance.get('torch_threads')} threads), host {provenance.get('hostname')}")


def markdown(provenance: Dict[str, Any]) -> str:
    """The block as a two-column Markdown table (TensorBoard's TEXT tab renders it)."""
    rows = "\n".join(f"| {key} | {value} |" for key, value in provenance.items())
    return "| | |\n|---|---|\n" + rows


def differences(original: Dict[str, Any], now: Dict[str, Any]) -> List[str]:
    """What differs between two blocks in the code and the libraries: 'torch 2.12.0 -> 2.13.0'."""
    keys = ("dqn_cli", "git_commit", "git_dirty", "python", *LIBRARIES, "device")
    return [f"{key} {_value(original, key)} -> {_value(now, key)}" for key in keys if original.get(key) != now.get(key)]


UNKNOWN = "unknown (no provenance: a run of an older dqn-cli)"


def _value(provenance: Optional[Dict[str, Any]], key: str) -> str:
    if not provenance:
        return UNKNOWN
    if key == "git_commit" and provenance.get("git_commit"):
        return provenance["git_commit"][:7] + (" (dirty)" if provenance.get("git_dirty") else "")
    return str(provenance.get(key))


def across(provenances: Sequence[Optional[Dict[str, Any]]]) -> Dict[str, List[str]]:
    """Each key's distinct values over a group's runs, in the order runs have them."""
    keys = ("dqn_cli", "git_commit", "python", *LIBRARIES, "device", "cpu", "torch_threads", "hostname")
    return {key: list(dict.fromkeys(_value(p, key) for p in provenances)) for key in keys}


def mixed(provenances: Sequence[Optional[Dict[str, Any]]]) -> List[str]:
    """Of MUST_MATCH, what differs across a group's runs: 'torch: 2.12.0+cpu, 2.13.0+cpu'."""
    values = across(provenances)
    return [f"{key}: {', '.join(values[key])}" for key in MUST_MATCH if len(values[key]) > 1]


def against_original(original: Path, now: Dict[str, Any]) -> Dict[str, Any]:
    """A reproduction's record of the run it reproduces: that dir, and what differs in the code and the
    libraries between the two (None: the original's provenance is unknown)."""
    import json

    try:
        before = json.loads((original / "summary.json").read_text()).get("provenance")
    except (OSError, ValueError, AttributeError):
        before = None
    return {"run_dir": str(original), "differences": None if before is None else differences(before, now)}


def describe_reproduction(record: Dict[str, Any], now: Dict[str, Any]) -> str:
    """The line a reproduction starts with."""
    if record["differences"] is None:
        return (f"reproducing {record['run_dir']}: its provenance is unknown (no finished summary.json with one), so "
                "whether this code and these libraries are the ones it ran with cannot be said")
    if not record["differences"]:
        return f"reproducing {record['run_dir']} with the code and libraries it ran with ({describe(now)})"
    return (f"reproducing {record['run_dir']} with other code or libraries than it ran with: "
            f"{'; '.join(record['differences'])}; the numbers may differ")

