"""Errors a user can cause. The CLI prints their message as one line and exits non-zero."""

import re
import shlex
from typing import Optional


def hydra_quoted(value: str) -> str:
    """`value` as Hydra reads it back: as it is when plain, else in Hydra's quotes (a sweep job's dir
    `seed=0,total_steps=600` would be a sweep; non-ASCII does not parse)."""
    if re.fullmatch(r"[A-Za-z0-9_./:+-]+", value):
        return value
    return '"' + value.replace('"', '\\"') + '"'  # Hydra's quoted string: only its quote is escaped


def resume_argument(run_dir) -> str:
    """`resume=<run_dir>` as one shell word that Hydra reads back as that path."""
    return shlex.quote(f"resume={hydra_quoted(str(run_dir))}")


class UserError(Exception):
    """Something the user can fix; the message says what is wrong and what would be right."""


class ConfigError(UserError):
    """A config key or value that is not allowed."""


class RunDirError(UserError):
    """A run directory or checkpoint that is missing, unreadable or not ours."""


class InvalidArgument(UserError, ValueError):
    """A Python API argument of the wrong shape or out of range."""


class EnvBroken(UserError):
    """A third-party env raised, or returned what gymnasium's contract does not allow (envs/contract.py)."""


class TrainingDiverged(UserError):
    """NaN or inf in the loss or the weights: training stops, the last good checkpoint stays."""


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM/SIGHUP (or a caller's stop request) ended training after a checkpoint was
    written, or ended the final evaluation after a partial summary.json was written."""

    def __init__(self, step: int, run_dir, signal_name=None, during: str = ""):
        self.step, self.run_dir, self.signal_name, self.during = step, run_dir, signal_name, during
        by = f" by {signal_name}" if signal_name else ""
        written = during or "checkpoint written"
        super().__init__(f"stopped at step {step:,}{by}; {written}; continue with: "
                         f"dqn-train {resume_argument(run_dir)}")


class RunAlreadyFinished(Exception):
    """resume= of a run that reached its budget, or stopped when solved, and wrote its summary: nothing to do."""

    def __init__(self, run_dir, step: int, budget_key: str = "total_steps", reached: Optional[int] = None,
                 solved: bool = False):
        self.run_dir, self.step = run_dir, step
        reached = step if reached is None else reached
        why, how = ((": an evaluation reached env.solve_threshold and training stopped", "eval.stop_when_solved=false")
                    if solved else ("", f"{budget_key}=<more than {reached}>"))
        super().__init__(f"{run_dir} already finished at step {step:,}{why} (summary.json); left as it is. To "
                         f"train it longer: dqn-train {resume_argument(run_dir)} {how}")
