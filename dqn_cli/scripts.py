"""The console scripts (dqn-train, dqn-eval, dqn-report).

Start-up makes hundreds of thousands of objects that live until the process exits: torch's,
Hydra's, the config's. The garbage collector would walk them again and again while they are made,
and once more at exit. So a script starts with the collector off, and the command calls
`start_up_done()` when its real work begins: what exists then is frozen (never walked again) and
collection resumes for what the work makes.
"""

from __future__ import annotations

import gc


def start_up_done() -> None:
    gc.freeze()
    gc.enable()


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
