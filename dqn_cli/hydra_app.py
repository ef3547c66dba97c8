"""Running dqn-train's Hydra app: user errors as one line instead of Hydra's multi-line dump, and
Hydra's first composition (made only to read hydra.mode) skipped when the command line cannot set it."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import List, Optional

from dqn_cli import compose
from dqn_cli.compose import refuse_a_used_run_dir, register_schemas
from dqn_cli.console import fail
from dqn_cli.errors import ConfigError, RunAlreadyFinished, TrainingInterrupted, UserError
from dqn_cli.hydra_errors import CONF_DIR, check_group_choices, explain_hydra_error
from dqn_cli.train_task import remove_unused_sweep_dir


# What can set hydra.mode besides -m: a sweep preset (conf/sweep/, the only presets that set it: a test
# checks), the key itself, or configs from another folder.
_MODE_KEYS = ("sweep", "hydra.mode", "hydra.searchpath")
_CONFIG_SOURCE_FLAGS = ("-cd", "--config-dir", "-cp", "--config-path", "-cn", "--config-name")
# Hydra's flags that print something and run no job.
_PRINT_ONLY_FLAGS = ("-c", "--cfg", "-i", "--info", "-sc", "--shell-completion", "--hydra-help")


def _command_line_can_set_mode(argv: List[str]) -> bool:
    return any(arg.partition("=")[0] in _CONFIG_SOURCE_FLAGS or arg.lstrip("+~").partition("=")[0] in _MODE_KEYS
               for arg in argv)


# Hydra settings whose bad values end in a traceback deep in a sweeper or launcher: what each allows.
_HYDRA_COUNTS = {"hydra.sweeper.n_trials": (lambda n: n >= 1, "an integer >= 1"),
                 "hydra.sweeper.n_jobs": (lambda n: n >= 1, "an integer >= 1"),
                 "hydra.launcher.n_jobs": (lambda n: n != 0, "a non-zero integer (-1: one job per core)")}


def _check_hydra_overrides(argv: List[str]) -> None:
    """Hydra's own keys that it would take without a check: `hydra.run.dir=<a folder that holds a
    run>` for a new run (refused before Hydra writes into it), and sweep and launcher counts."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        overrides = OverridesParser.create().parse_overrides([arg for arg in argv if "=" in arg
                                                              and not arg.startswith("-")])
    except HydraException:
        return  # Hydra itself reports the faulty override
    values = {override.key_or_group: override.value() for override in overrides}
    for key in ("hydra.run.dir", "hydra.sweep.dir"):
        if key in values and not str(values[key] or "").strip():  # Hydra would write into the current folder
            raise ConfigError(f"{key}= needs a folder, e.g. {key}=outputs/my_run")
    for key, (allowed, what) in _HYDRA_COUNTS.items():
        value = values.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not allowed(value)):
            raise ConfigError(f"{key}={value} is out of range; allowed: {what}")
    run_dir, resume = values.get("hydra.run.dir"), values.get("resume")
    if run_dir is not None and resume and Path(str(run_dir)).resolve() != Path(str(resume)).resolve():
        raise ConfigError(f"resume={resume} continues the run in its own dir; drop hydra.run.dir={run_dir} (a run "
                          "cannot move while it is resumed)")
    multirun = any(arg in ("-m", "--multirun") for arg in argv)
    if not multirun and values.get("hydra.run.dir") is not None and not values.get("resume"):
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


def _library_error_line(error: Exception) -> Optional[str]:
    """One line for what Hydra, OmegaConf or Optuna answer with a bare exception; None for others."""
    text = str(error)
    if "No trials are completed yet" in text:
        return "every trial of the Optuna search failed, so there is no best; see error.txt in each job's dir under " \
               "the sweep dir"
    if "Expecting one subcommand" in text:
        return ("--shell-completion needs what to do: install=bash (or zsh, fish), uninstall=bash or query=bash, "
                "e.g. eval \"$(dqn-train -sc install=bash)\"")
    if "Unexpected type for root: NoneType" in text:  # OmegaConf: env.atari.noop_max=3 when env.atari is null
        keys = [arg.split("=", 1)[0].lstrip("+~") for arg in sys.argv[1:] if arg.lstrip("+~").startswith("env.atari.")]
        return (f"{' / '.join(keys) or 'an override'}: sets a key inside a setting that is null here (env.atari is "
                "null for non-Atari envs); for another Atari game use env=pong env.id=ALE/<Game>-v5 env.solve_threshold=null")
    return None


def run_hydra_app(task, program: str) -> None:
    """Run a Hydra app, reporting user errors as one line instead of Hydra's multi-line dump."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_schemas()
    compose.print_only = any(arg.split("=")[0] in _PRINT_ONLY_FLAGS for arg in sys.argv[1:])
    try:
        check_group_choices(sys.argv[1:])
        _check_hydra_overrides(sys.argv[1:])
    except UserError as error:
        fail(program, str(error))
    show_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # makes Hydra re-raise, so we can word the message
    app = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(task)
    try:
        try:
            with _mode_known_without_composing(sys.argv[1:]):
                app()
        except (UserError, HydraException, OmegaConfBaseException):
            remove_unused_sweep_dir()
            raise
        if task.error is not None:
            raise task.error
    except RunAlreadyFinished as done:
        print(f"{program}: {done}", file=sys.stderr)
    except UserError as error:
        fail(program, str(error))
    except (HydraException, OmegaConfBaseException) as error:
        if show_traceback:
            raise
        if compose.print_only and "--resolve" in sys.argv[1:] and "Interpolation key 'resume' not found" in str(error):
            fail(program, "--resolve --cfg hydra resolves Hydra's part alone, and dqn-train's run dir needs the "
                          "rest: use --resolve --cfg all, or --cfg hydra without --resolve")
        fail(program, explain_hydra_error(error))
    except (ValueError, AssertionError) as error:
        line = None if show_traceback else _library_error_line(error)
        if line is None:
            raise
        fail(program, line)
    except TrainingInterrupted as stop:
        print(f"{program}: {stop}", file=sys.stderr)
        from dqn_cli.runtime import EXIT_STATUS

        sys.exit(EXIT_STATUS.get(stop.signal_name, 130))
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside a run's own handler (a sweep's launcher)
        print(f"{program}: interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as error:  # an output folder that cannot be written, a full disk
        if show_traceback:
            raise
        where = error.filename or "the output folder"
        fail(program, f"cannot write {where}: {error.strerror or error}; choose a writable folder "
                       "(hydra.run.dir=...) or free some space")
