"""Errors a user can cause. The CLI prints their message as one line and exits non-zero."""


class UserError(Exception):
    """Something the user can fix; the message says what is wrong and what would be right."""


class ConfigError(UserError):
    """A config key or value that is not allowed."""


class RunDirError(UserError):
    """A run directory or checkpoint that is missing, unreadable or not ours."""
