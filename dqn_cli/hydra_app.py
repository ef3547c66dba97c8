"""Running dqn-train's Hydra app: user errors as one line instead of Hydra's multi-line dump, and
Hydra's first composition (made only to read hydra.mode) skipped when the command line cannot set it."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import List

from dqn_cli import compose
from dqn_cli.compose import refuse_a_used_run_dir, register_schemas
from dqn_cli.console import fail
from dqn_cli.errors import RunAlreadyFinished, TrainingInterrupted, UserError
from dqn_cli.hydra_errors import CONF_DIR, check_group_choices, explain_hydra_error


# What can set hydra.mode besides -m: a sweep preset (conf/sweep/, the only presets that set it: a test
# checks), the key itself, or configs from another folder.
_MODE_KEYS = ("sweep", "hydra.mode", "hydra.searchpath")
_CONFIG_SOURCE_FLAGS = ("-cd", "--config-dir", "-cp", "--config-path", "-cn", "--config-name")
# Hydra's flags that print something and run no job.
_PRINT_ONLY_FLAGS = ("-c", "--cfg", "-i", "--info", "-sc", "--shell-completion", "--hydra-help")


def _command_line_can_set_mode(argv: List[str]) -> bool:
    return any(arg.partition("=")[0] in _CONFIG_SOURCE_FLAGS or arg.lstrip("+~").partition("=")[0] in _MODE_KEYS
               for arg in argv)


def _check_run_dir_override(argv: List[str]) -> None:
    """`hydra.run.dir=<a folder that holds a run>` for a new run: refused before Hydra writes into it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    if any(arg in ("-m", "--multirun") for arg in argv):
        return
    try:
        overrides = OverridesParser.create().parse_overrides([arg for arg in argv if "=" in arg
                                                              and not arg.startswith("-")])
    except HydraException:
        return  # Hydra itself reports the faulty override
    values = {override.key_or_group: override.value() for override in overrides}
    if values.get("hydra.run.dir") is not None and not values.get("resume"):
        refuse_a_used_run_dir(Path(str(values["hydra.run.dir"])))


@contextlib.contextmanager
def _mode_known_without_composing(argv: List[str]):
    """Hydra composes the whole config once only to read hydra.mode, then again to run. When nothing
    on the command line can set the mode, the answer is known (unset) and that first composition is
    skipped."""
    from hydra._internal.hydra import Hydra

    if _command_line_can_set_mode(argv):
        yield
        return
    get_mode = Hydra.get_mode
    Hydra.get_mode = lambda self, config_name, overrides: None
    try:
        yield
    finally:
        Hydra.get_mode = get_mode


def run_hydra_app(task, program: str) -> None:
    """Run a Hydra app, reporting user errors as one line instead of Hydra's multi-line dump."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_schemas()
    compose.print_only = any(arg.split("=")[0] in _PRINT_ONLY_FLAGS for arg in sys.argv[1:])
    try:
        check_group_choices(sys.argv[1:])
        _check_run_dir_override(sys.argv[1:])
    except UserError as error:
        fail(program, str(error))
    show_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # makes Hydra re-raise, so we can word the message
    app = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(task)
    try:
        with _mode_known_without_composing(sys.argv[1:]):
            app()
        if task.error is not None:
            raise task.error
    except RunAlreadyFinished as done:
        print(f"{program}: {done}", file=sys.stderr)
    except UserError as error:
        fail(program, str(error))
    except (HydraException, OmegaConfBaseException) as error:
        if show_traceback:
            raise
        fail(program, explain_hydra_error(error))
    except AssertionError as error:
        # OmegaConf's answer to `env.atari.noop_max=3` when env.atari is null (a non-Atari env).
        if show_traceback or "Unexpected type for root: NoneType" not in str(error):
            raise
        keys = [arg.split("=", 1)[0].lstrip("+~") for arg in sys.argv[1:] if arg.lstrip("+~").startswith("env.atari.")]
        fail(program, f"{' / '.join(keys) or 'an override'}: sets a key inside a setting that is null here "
                       "(env.atari is null for non-Atari envs); for another Atari game use env=pong "
                       "env.id=ALE/<Game>-v5")
    except TrainingInterrupted as stop:
        print(f"{program}: {stop}", file=sys.stderr)
        from dqn_cli.runtime import EXIT_STATUS

        sys.exit(EXIT_STATUS.get(stop.signal_name, 130))
    except KeyboardInterrupt:
        fail(program, "interrupted")
    except OSError as error:  # an output folder that cannot be written, a full disk
        if show_traceback:
            raise
        where = error.filename or "the output folder"
        fail(program, f"cannot write {where}: {error.strerror or error}; choose a writable folder "
                       "(hydra.run.dir=...) or free some space; earlier checkpoints are untouched")
