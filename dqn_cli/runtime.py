"""Where and how a run executes: device, threads, seeding, signals, start-up time."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from dqn_cli.errors import ConfigError
from dqn_cli.networks import is_convolutional


def resolve_device(name: str, gpu_pays_off: bool = True) -> torch.device:
    """device=auto (or auto:N) takes the GPU (N) only for networks that gain from one: small MLPs
    train faster on a couple of CPU cores than on a GPU (docs: benchmarks)."""
    if not re.fullmatch(r"(cpu|cuda|auto|mps)(:\d+)?", name):
        raise ConfigError(f"device={name!r} is not a device; use cpu, cuda, cuda:N or auto")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but no CUDA device is available; use device=auto or device=cpu")
    if name.startswith("auto"):
        name = name.replace("auto", "cuda") if torch.cuda.is_available() and gpu_pays_off else "cpu"
    return torch.device(name)


def device_for(name: str, q_network: nn.Module) -> torch.device:
    return resolve_device(name, gpu_pays_off=is_convolutional(q_network))


def check_compiler(compile_update: bool, device: torch.device) -> None:
    """compile=true on the CPU builds its kernels with a C++ compiler: without one that builds, refuse it
    in one line before training starts, not with a compiler trace at the first update."""
    if not compile_update or device.type != "cpu":
        return
    from torch._inductor.cpp_builder import get_cpp_compiler
    try:
        compiler = get_cpp_compiler()
    except Exception:  # torch's InvalidCxxCompiler, or whatever a future torch raises for it
        raise ConfigError("compile=true on the CPU needs a C++ compiler for torch.compile's kernels and none was "
                          "found (install g++, or set CXX to one); or set compile=false") from None
    with tempfile.TemporaryDirectory() as folder:  # one that answers --version may still not build
        source, library = Path(folder) / "probe.cpp", Path(folder) / "probe.so"
        source.write_text('#include <cmath>\n#include <vector>\nextern "C" float probe(float x) { return std::sqrt(x); }\n')
        built = subprocess.run([compiler, "-shared", "-fPIC", str(source), "-o", str(library)], capture_output=True,
                               text=True)
        if built.returncode != 0 or not library.is_file():
            why = next(iter(built.stderr.strip().splitlines()), "no library written")
            raise ConfigError(f"compile=true on the CPU needs a working C++ compiler, and {compiler} could not build "
                              f"a test file ({why}); fix it, set CXX to another, or set compile=false")


def job_device(device: str, job_number: int, gpu_count: int) -> str:
    """Spread the jobs of a sweep over the GPUs of one machine: job n gets GPU (n mod count)."""
    if device in ("auto", "cuda") and gpu_count > 1:
        return f"{device}:{job_number % gpu_count}"
    return device


# Below this many weights a convolutional network (MinAtar's, about 0.1M) runs fastest on one thread,
# unless each gradient step takes at least LARGE_UPDATE_ROWS transitions (PQN's minibatches).
SMALL_NETWORK_WEIGHTS = 1_000_000
LARGE_UPDATE_ROWS = 128


def torch_threads(requested: int, device: torch.device, q_network: nn.Module, update_rows: int,
                  cores: Optional[int] = None) -> int:
    """MLPs, and small CNNs on small batches, run fastest on one thread (less sync than work); the
    Nature CNN, and a small CNN fit on large minibatches, use the cores: `cores` of them where the run
    shares the machine with others (the jobs of a parallel sweep), else all."""
    if requested > 0:
        return requested
    if device.type == "cuda" or not is_convolutional(q_network):
        return 1
    weights = sum(p.numel() for p in q_network.parameters())
    if weights < SMALL_NETWORK_WEIGHTS and update_rows < LARGE_UPDATE_ROWS:
        return 1
    return cores or usable_cores()


def usable_cores() -> int:
    """The cores this process may run on: a SLURM allocation's or taskset's, not the whole node's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cores_per_job(launcher_target: str, n_jobs: Optional[int]) -> Optional[int]:
    """The cores each job of a sweep may take: the machine's shared by joblib's parallel jobs (n_jobs,
    negative counting back from one per core, as joblib does); None (all) for launchers that run jobs
    one at a time or each on an allocation of its own (SLURM)."""
    if "joblib" not in launcher_target:
        return None
    cores = usable_cores()
    jobs = cores + 1 + n_jobs if n_jobs is not None and n_jobs < 0 else (n_jobs or 1)
    return max(1, cores // max(1, jobs))


@contextlib.contextmanager
def subnormals_flushed():
    """While training, subnormal floats count as zero. Optimizer statistics of rarely used weights
    (RMSProp's and Adam's squared-gradient averages) decay into that range, where CPUs compute many
    times slower; zero there changes no update that matters. torch has no getter for the setting,
    so afterwards it goes back to torch's default (off)."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def seconds_since_launch() -> float | None:
    """How long ago this process was launched (Linux: its start in /proc, against the same boot clock;
    /proc/stat's boot time is in whole seconds, too coarse for this); None elsewhere."""
    try:
        ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python's and torch's global RNGs; returns the numpy generator the loop draws from."""
    random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


# SIGHUP (a closed terminal or SSH session) stops a run the way SIGTERM (SLURM, kill) does.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
EXIT_STATUS = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}


class StopOnSignal:
    """SIGINT / SIGTERM / SIGHUP ask the loop to stop after the current step and checkpoint (or
    the final evaluation to stop after the current step); a second SIGINT aborts at once.
    Installed only while train() runs, in the main thread."""

    def __init__(self):
        self.signal_name: Optional[str] = None
        self.previous: dict = {}

    def __call__(self, step: int) -> bool:
        return self.signal_name is not None

    def _handle(self, signum, frame) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
