"""Errors a user can cause. The CLI prints their message as one line and exits non-zero."""


class UserError(Exception):
    """Something the user can fix; the message says what is wrong and what would be right."""


class ConfigError(UserError):
    """A config key or value that is not allowed."""


class RunDirError(UserError):
    """A run directory or checkpoint that is missing, unreadable or not ours."""


class TrainingDiverged(UserError):
    """NaN or inf in the loss or the weights: training stops, the last good checkpoint stays."""


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM (or a caller's stop request) ended training after a checkpoint was written."""

    def __init__(self, step: int, run_dir, signal_name=None):
        self.step, self.run_dir, self.signal_name = step, run_dir, signal_name
        super().__init__(f"stopped at step {step:,}{f' by {signal_name}' if signal_name else ''}; checkpoint "
                         f"written; continue with: dqn-train resume={run_dir}")
