"""Console entry points: compose -> typed config -> core. The only module that runs Hydra."""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import List, NoReturn, Optional

from dqn_cli import config as config_module
from dqn_cli.errors import ConfigError, RunAlreadyFinished, TrainingInterrupted, UserError
from dqn_cli.hydra_errors import CONF_DIR, check_group_choices, explain_hydra_error
from dqn_cli.scripts import start_up_done

log = logging.getLogger("dqn_cli")


def _say(line: str = "") -> None:
    """Print a result line (none: just flush); a reader that closed stdout (`| head`) is no error:
    the work is done, so what it did not read goes to /dev/null instead of a traceback at exit."""
    try:
        if line:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _fail(program: str, message: str) -> NoReturn:
    print(f"{program}: error: {message}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------------------------------------
# Hydra's side: resolvers and schemas


# Folders above a new run dir that this process created (outputs/, outputs/runs/), deepest last:
# a run refused before it trained removes them again if they are still empty.
_created_parents: List[Path] = []


@functools.lru_cache(maxsize=None)  # Hydra may resolve the run dir more than once: one answer per process
def claim_new_run_dir(name: str) -> str:
    """`name`, or `name_2`, `name_3`, ... : the first that this process creates itself, so two runs
    started in the same second never share a dir."""
    missing = [parent for parent in Path(name).parents if not parent.exists()]
    Path(name).parent.mkdir(parents=True, exist_ok=True)
    _created_parents.extend(reversed(missing))
    for attempt in itertools.count(1):
        candidate = name if attempt == 1 else f"{name}_{attempt}"
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            continue


def _run_dir(resume: Optional[str], fresh: str) -> str:
    """Hydra's run dir: a new one, or the resumed run's own dir, which must be a dqn-train run dir
    (checked before Hydra writes anything into it)."""
    if not resume:
        return claim_new_run_dir(fresh)
    if not os.path.isdir(resume):
        raise ConfigError(f"resume={resume}: no such run dir; pass the dir of an earlier run, e.g. "
                          "resume=outputs/runs/<run>")
    if not os.path.isdir(os.path.join(resume, "checkpoints")):
        raise ConfigError(f"resume={resume}: not a dqn-train run dir (no checkpoints/ in it)")
    return resume


def _train_help() -> str:
    from dqn_cli.help import train_help

    return train_help().replace("$", "$$")  # Hydra fills the help in as a string.Template


def register_schemas() -> None:
    """Store every schema in Hydra's ConfigStore (the YAML options extend them by name), and the
    resolvers conf/config.yaml uses."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    # resume=<dir> runs in that dir; its own .hydra/ (the original overrides) is kept untouched.
    OmegaConf.register_new_resolver("dqn_run_dir", _run_dir, replace=True)
    OmegaConf.register_new_resolver("dqn_hydra_subdir", lambda resume, now: f".hydra-resume/{now}" if resume
                                    else ".hydra", replace=True)
    OmegaConf.register_new_resolver("dqn_help", _train_help, replace=True)

    store = ConfigStore.instance()
    store.store(name="train_schema", node=config_module.TrainConfig)
    store.store(group="env", name="env_schema", node=config_module.EnvConfig)
    for group, options in config_module.GROUP_SCHEMAS.items():
        for option, schema in options.items():
            store.store(group=group, name=f"{option}_schema", node=schema)


def typed_config(cfg) -> config_module.TrainConfig:
    """Hydra's composed config as a TrainConfig (the schemas' range checks run here)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as error:  # e.g. a mandatory value (???) left unset
        raise ConfigError(explain_hydra_error(error)) from None


# ---------------------------------------------------------------------------------------------
# dqn-train


def resumed_config(run_dir: Path, new_overrides: List[str]) -> config_module.TrainConfig:
    """The config saved in the run's newest checkpoint, with this command's overrides on top: a
    group choice (target=soft) takes that option's values, a key=value sets one value."""
    from hydra import compose
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from dqn_cli.checkpoint import find_resumable

    saved = find_resumable(run_dir / "checkpoints").state["config"]
    overrides = [o for o in OverridesParser.create().parse_overrides(new_overrides)
                 if o.key_or_group != "resume" and not o.key_or_group.startswith("hydra")]  # Hydra's own
    for override in overrides:
        if override.key_or_group in ("experiment", "variant", "sweep") or override.is_delete():
            raise ConfigError(f"resume: {override.input_line} cannot be applied to a run that exists; "
                              "set its keys one by one")
    groups = [o for o in overrides if o.key_or_group in config_module.GROUP_SCHEMAS or o.key_or_group == "env"]
    if groups:
        composed = OmegaConf.to_container(compose(config_name="config", overrides=[o.input_line for o in groups]))
        saved = {**saved, **{o.key_or_group: composed[o.key_or_group] for o in groups}}
    try:
        merged = OmegaConf.structured(config_module.from_dict(saved))
        for override in overrides:
            if override not in groups:
                OmegaConf.update(merged, override.key_or_group, override.value(), force_add=override.is_add())
        typed = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        raise ConfigError(explain_hydra_error(error)) from None
    typed.resume = str(run_dir)
    return typed


def remove_if_only_bookkeeping(run_dir: Path, bookkeeping: set) -> None:
    """A run refused before it trained leaves no directory behind (only Hydra's own files were there),
    nor the empty folders above it that this process made."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= bookkeeping:
        shutil.rmtree(run_dir, ignore_errors=True)
        for parent in reversed(_created_parents):
            with contextlib.suppress(OSError):  # not empty: another run uses it
                parent.rmdir()


class TrainTask:
    """dqn-train's Hydra task. Hydra's main returns nothing, so a single run's user error or stop
    is kept here (`error`) and reported after Hydra returns, without its job-failure dump. In a
    sweep, a failed job writes error.txt and the launcher goes on."""

    def __init__(self):
        self.error: Optional[BaseException] = None

    def __call__(self, cfg) -> float:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        start_up_done()
        hydra_cfg = HydraConfig.get()
        run_dir = Path(hydra_cfg.runtime.output_dir)
        in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
        try:
            summary = self._train(cfg, hydra_cfg, run_dir, in_sweep)
        except (UserError, TrainingInterrupted, RunAlreadyFinished) as error:
            if in_sweep:
                return self._record_failed_job(run_dir, str(error))
            self.error = error
            if not isinstance(error, TrainingInterrupted):
                self._leave_nothing_behind(cfg, hydra_cfg, run_dir)
            return float("nan")
        except Exception:
            if in_sweep:
                return self._record_failed_job(run_dir, traceback.format_exc())
            self.error = sys.exc_info()[1]  # re-raised after Hydra returns, without its job-failure line
            return float("nan")
        best, last = summary["final_eval"]["best"], summary["final_eval"]["last"]
        log.info(f"run dir: {run_dir} | best.pt {best['mean']:.1f} ± {best['std']:.1f}, "
                 f"last.pt {last['mean']:.1f} ± {last['std']:.1f} over {best['episodes']} greedy episodes "
                 f"| {summary['steps']} steps in {summary['wall_time_s']:.1f} s")  # console and train.log
        return best["mean"]

    @staticmethod
    def _train(cfg, hydra_cfg, run_dir: Path, in_sweep: bool) -> dict:
        import torch

        from dqn_cli.runtime import job_device
        from dqn_cli.loop import train

        typed = typed_config(cfg)
        if typed.resume is not None:
            typed = resumed_config(Path(typed.resume), list(hydra_cfg.overrides.task))
        resume = typed.resume is not None
        if in_sweep:
            typed.device = job_device(typed.device, hydra_cfg.job.num, torch.cuda.device_count())
            # A requeued (SLURM/submitit) or re-run job finds its own unfinished checkpoints: continue them.
            if list(run_dir.glob("checkpoints/step_*.pt")) and not (run_dir / "summary.json").is_file():
                log.info(f"{run_dir} holds an unfinished run of this job: resuming it")
                (run_dir / "error.txt").unlink(missing_ok=True)
                resume = True
        return train(typed, run_dir, resume=resume, overrides=list(hydra_cfg.overrides.task),
                     sweep=Path(hydra_cfg.sweep.dir).name if in_sweep else None)

    @staticmethod
    def _leave_nothing_behind(cfg, hydra_cfg, run_dir: Path) -> None:
        """A refused run removes what Hydra wrote for it: a new run dir, or a resume's .hydra-resume/<time>."""
        if cfg.get("resume"):
            shutil.rmtree(run_dir / hydra_cfg.output_subdir, ignore_errors=True)
            with contextlib.suppress(OSError):
                (run_dir / hydra_cfg.output_subdir).parent.rmdir()  # .hydra-resume, if nothing else is in it
        else:
            remove_if_only_bookkeeping(run_dir, {".hydra", "train.log", ".lock"})

    @staticmethod
    def _record_failed_job(run_dir: Path, message: str) -> float:
        """One failed job must not end the sweep: say why in its error.txt and let the launcher go on."""
        (run_dir / "error.txt").write_text(message + "\n")
        log.error(f"job failed ({run_dir}): {message.strip().splitlines()[0] if message.strip() else 'no message'}")
        return float("nan")


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - hydra is a hard dependency
    _HydraCallback = object


class SweepStatusCallback(_HydraCallback):
    """At the start of a multirun, end the launching process's start-up (it may run no job itself).
    At its end: say how many jobs finished, write the report, and exit non-zero if any job failed
    (Hydra swallows a callback's exceptions, not its exit)."""

    def on_multirun_start(self, config, **kwargs) -> None:
        start_up_done()

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        failed = sorted(str(p.parent.relative_to(sweep_dir)) for p in sweep_dir.glob("**/error.txt"))
        done = sorted(str(p.parent.relative_to(sweep_dir)) for p in sweep_dir.glob("**/summary.json"))
        _say(f"sweep dir: {sweep_dir} | {len(done)} job(s) finished, {len(failed)} failed")
        if done:
            try:
                from dqn_cli.report import write_report

                write_report([sweep_dir])
                _say(f"report: {sweep_dir / 'report.md'}")
            except Exception as error:  # a report problem must not hide the sweep's own outcome
                print(f"report: not written ({error})", file=sys.stderr)
        if failed:
            _fail("dqn-train", f"{len(failed)} sweep job(s) failed: {', '.join(failed)} "
                               "(see error.txt in each; the other jobs' results are kept)")


# What can set hydra.mode besides -m: a sweep preset (conf/sweep/, the only presets that set it: a test
# checks), the key itself, or configs from another folder.
_MODE_KEYS = ("sweep", "hydra.mode", "hydra.searchpath")
_CONFIG_SOURCE_FLAGS = ("-cd", "--config-dir", "-cp", "--config-path", "-cn", "--config-name")


def _command_line_can_set_mode(argv: List[str]) -> bool:
    return any(arg.partition("=")[0] in _CONFIG_SOURCE_FLAGS or arg.lstrip("+~").partition("=")[0] in _MODE_KEYS
               for arg in argv)


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


def _run_hydra_app(task: TrainTask, program: str) -> None:
    """Run a Hydra app, reporting user errors as one line instead of Hydra's multi-line dump."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_schemas()
    try:
        check_group_choices(sys.argv[1:])
    except UserError as error:
        _fail(program, str(error))
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
        _fail(program, str(error))
    except (HydraException, OmegaConfBaseException) as error:
        if show_traceback:
            raise
        _fail(program, explain_hydra_error(error))
    except AssertionError as error:
        # OmegaConf's answer to `env.atari.noop_max=3` when env.atari is null (a non-Atari env).
        if show_traceback or "Unexpected type for root: NoneType" not in str(error):
            raise
        keys = [arg.split("=", 1)[0].lstrip("+~") for arg in sys.argv[1:] if arg.lstrip("+~").startswith("env.atari.")]
        _fail(program, f"{' / '.join(keys) or 'an override'}: sets a key inside a setting that is null here "
                       "(env.atari is null for non-Atari envs); for another Atari game use env=pong "
                       "env.id=ALE/<Game>-v5")
    except TrainingInterrupted as stop:
        print(f"{program}: {stop}", file=sys.stderr)
        from dqn_cli.runtime import EXIT_STATUS

        sys.exit(EXIT_STATUS.get(stop.signal_name, 130))
    except KeyboardInterrupt:
        _fail(program, "interrupted")
    except OSError as error:  # an output folder that cannot be written, a full disk
        if show_traceback:
            raise
        where = error.filename or "the output folder"
        _fail(program, f"cannot write {where}: {error.strerror or error}; choose a writable folder "
                       "(hydra.run.dir=...) or free some space; earlier checkpoints are untouched")


def train_main() -> None:
    """`dqn-train [group=option ...] [key=value ...]` (Hydra command line)."""
    logging.raiseExceptions = False  # a log line to a closed stdout (`| head`) is no reason for a traceback
    _run_hydra_app(TrainTask(), "dqn-train")
    _say()


# ---------------------------------------------------------------------------------------------
# dqn-report, dqn-eval


def report_main(argv: List[str] | None = None) -> None:
    """`dqn-report <sweep dir | run dirs ...> [--out DIR]`: aggregate runs into a table and plots."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="dqn-report", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Aggregate runs that differ only in seed into one row per configuration: mean ± std, "
                    "interquartile mean,\n95% bootstrap confidence interval, solved fraction, learning curves.",
        epilog="examples:\n  dqn-report outputs/sweeps/<sweep>              a sweep (written into it)\n"
               "  dqn-report outputs/runs/<a> outputs/runs/<b> --out report   chosen runs\n"
               "  dqn-report --label hard=outputs/sweeps/<a> --label soft=outputs/sweeps/<b>   named groups, "
               "compared\n\n"
               "See also: dqn-train --help, dqn-eval --help.")
    parser.add_argument("paths", nargs="*", type=Path, help="a sweep dir, or several run dirs")
    parser.add_argument("--label", action="append", default=[], metavar="NAME=DIR",
                        help="one group called NAME: every run under DIR (repeat to compare groups)")
    parser.add_argument("--out", type=Path, help="where to write (default: the sweep dir, or ./report)")
    args = parser.parse_args(argv)
    try:
        from dqn_cli.report import write_report

        labels = {}
        for label in args.label:
            name, _, folder = label.partition("=")
            if not name or not folder:
                raise UserError(f"--label {label!r}: write it as NAME=DIR, e.g. --label soft=outputs/sweeps/<sweep>")
            labels[name] = Path(folder)
        if not args.paths and not labels:
            raise UserError("nothing to report: pass a sweep dir, run dirs, or --label NAME=DIR")
        start_up_done()
        out = write_report(args.paths, args.out, labels)
    except UserError as error:
        _fail("dqn-report", str(error))
    _say(f"report: {out / 'report.md'} (+ report.json, learning_curves.png, episode_returns.png)")
    _say((out / "report.md").read_text().split("\n\n![")[0])


def parse_eval_args(argv: List[str]) -> config_module.EvalArgs:
    """dqn-eval's key=value arguments, typed and checked by OmegaConf against EvalArgs."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    keys = ", ".join(config_module.EvalArgs.__dataclass_fields__)
    for arg in argv:
        if "=" not in arg or arg.startswith("-"):
            raise UserError(f"unexpected argument {arg!r}; use key=value with keys: {keys}")
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(config_module.EvalArgs),
                                                   OmegaConf.from_dotlist(argv)))
    except OmegaConfBaseException as error:
        raise UserError(explain_hydra_error(error)) from None


def eval_main(argv: List[str] | None = None) -> None:
    """`dqn-eval run=<run dir> [checkpoint=best|last] [episodes=N] [video=true] [seed=N] [device=cpu]`."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        from dqn_cli.help import eval_help

        _say(eval_help())
        return
    try:
        from dqn_cli.evaluate_run import evaluate_run

        args = parse_eval_args(argv)
        start_up_done()
        result = evaluate_run(Path(args.run), str(args.checkpoint), args.episodes, args.video, args.seed,
                              args.device)
    except UserError as error:
        _fail("dqn-eval", str(error))
    except KeyboardInterrupt:
        _fail("dqn-eval", "interrupted")
    line = (f"{result['checkpoint']}.pt: {result['mean']:.2f} ± {result['std']:.2f} over "
            f"{result['episodes']} greedy episodes ({result['env_id']}) -> {result['eval_json']}")
    if result.get("video"):
        line += f" | video: {result['video']}"
    _say(line)


if __name__ == "__main__":  # pragma: no cover
    # Run the imported module's entry point, not this __main__ copy's: launchers that pickle the
    # config (Ray) must find its resolvers under their importable name, dqn_cli.cli.
    from dqn_cli.cli import train_main as imported_train_main

    imported_train_main()
