"""runtime.py: devices for sweep jobs and the start-up clock."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from dqn_cli.runtime import job_device


def test_sweep_jobs_spread_over_several_gpus_only():
    assert [job_device("cuda", n, 4) for n in range(6)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]
    assert job_device("auto", 5, 4) == "auto:1"  # still auto: a GPU only if the network gains from one
    assert job_device("cuda", 3, 1) == "cuda"  # one GPU (or SLURM's own allocation): keep it
    assert job_device("cpu", 3, 4) == "cpu" and job_device("cuda:2", 0, 4) == "cuda:2"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc: start-up is reported on Linux only")
def test_seconds_since_launch_is_the_time_since_the_process_started():
    """The start-up figure: a process asked right after launch answers at most the time the launcher
    saw pass (plus /proc's 10 ms tick), never a second more."""
    probe = ("import time; from dqn_cli.runtime import seconds_since_launch; "
             "print(seconds_since_launch(), time.clock_gettime(time.CLOCK_BOOTTIME))")
    before = time.clock_gettime(time.CLOCK_BOOTTIME)
    answer, child_now = map(float, subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                                  check=True).stdout.split())
    assert 0 < answer <= child_now - before + 0.02
