"""The console scripts (dqn-train, dqn-eval, dqn-report): the collector off (startup.py), then cli."""

from __future__ import annotations

import gc


def _run(command: str) -> None:
    gc.disable()
    from dqn_cli import cli

    getattr(cli, command)()


def train_main() -> None:
    _run("train_main")


def eval_main() -> None:
    _run("eval_main")


def report_main() -> None:
    _run("report_main")
