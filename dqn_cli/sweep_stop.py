"""Stopping a sweep with a signal. SIGTERM or SIGHUP to the process that launched a sweep reaches
its joblib workers too (they are its children, not its process group); each running job
checkpoints and stops, and no job starts after it. The sweep then ends with the signal's exit
status and the command that continues it in the same sweep dir, where each job resumes its
checkpoint."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import List, Optional

_SIGNALS = ("SIGTERM", "SIGHUP")
stopped_by: Optional[str] = None  # the signal that stopped the sweep, as seen by this process
_installed = False
_forward = False  # this process launched the sweep: pass the signal on to its job workers


def _worker_pids() -> List[int]:
    """This process's child processes that run jobs (loky's workers; not its resource tracker)."""
    pids = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"resource_tracker" not in command:
                pids.append(int(pid))
    return pids


def _note_and_forward(signum, frame) -> None:
    global stopped_by
    stopped_by = signal.Signals(signum).name
    for pid in _worker_pids() if _forward else []:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass



def catch_stop_signals(forward_to_workers: bool) -> None:
    """From now on in this process, SIGTERM and SIGHUP are noted (and, in the launching process,
    passed on to the job workers) instead of killing it between jobs. A running job's own handler
    (runtime.StopOnSignal) takes them while it trains."""
    global _installed, _forward
    _forward = _forward or forward_to_workers
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    for name in _SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _note_and_forward)
    _installed = True


def note_stop(signal_name: Optional[str]) -> None:
    """A job in this process was stopped by `signal_name`: the jobs after it here do not start."""
    global stopped_by
    stopped_by = stopped_by or signal_name
