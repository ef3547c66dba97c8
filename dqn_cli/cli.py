"""Console entry points. The only module that imports Hydra: compose -> typed config -> core."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn

from dqn_cli import config as config_module
from dqn_cli.errors import ConfigError, TrainingInterrupted, UserError

log = logging.getLogger("dqn_cli")

# Installed wheel: dqn_cli/conf; source checkout or editable install: <repo>/conf.
_PACKAGE_DIR = Path(__file__).resolve().parent
CONF_DIR = next(p for p in (_PACKAGE_DIR / "conf", _PACKAGE_DIR.parent / "conf") if p.is_dir())

_failed_jobs: List[str] = []  # filled by SweepStatusCallback in the launching process
_user_errors: List[Exception] = []  # a single run's user error or stop, reported after Hydra returns


def _fail(program: str, message: str) -> NoReturn:
    print(f"{program}: error: {message}", file=sys.stderr)
    sys.exit(2)


def group_options(group: str) -> List[str]:
    """The YAML options of a config group (what a user may type after `group=`)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _schema_keys(class_name: str) -> List[str]:
    schema = getattr(config_module, class_name, None)
    if schema is None or not dataclasses.is_dataclass(schema):
        return []
    return [f.name for f in dataclasses.fields(schema) if f.name != "name"]


def explain_hydra_error(error: BaseException) -> str:
    """Turn Hydra / OmegaConf composition errors into one line that says what would be right."""
    chain, link = [], error
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    own = next((e for e in chain if isinstance(e, UserError)), None)
    if own is not None:  # raised by one of our resolvers while Hydra composed
        return str(own)
    text = "\n".join(str(e) for e in chain)
    missing = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
    if missing:
        group, option = missing.groups()
        return f"{group}={option} is not an option; choose one of: {', '.join(group_options(group))}"
    override = re.search(r"(?:Could not override '|Error merging override )([^'=\s]+)", text)
    key = override.group(1) if override else next(
        (e.full_key for e in chain if getattr(e, "full_key", None)), "a setting")
    unknown = re.search(r"Key '([^']+)' (?:is )?not in (?:struct|'(\w+)')", text)
    if unknown:
        key = unknown.group(1) if key == "a setting" else key
        allowed = _schema_keys(unknown.group(2) or "")
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        source = re.search(r"In '([^']+)':", text)
        where = f" (in conf/{source.group(1)}.yaml)" if source and source.group(1) != "config" else ""
        return f"{key} is not a setting{where}{hint}"
    conversion = re.search(r"Value '([^']*)' of type '\w+' could not be converted to (\w+)", text)
    if conversion:
        value, kind = conversion.groups()
        return f"{key}={value!r} is not valid: expected {kind.lower()}"
    missing_value = re.search(r"Missing mandatory value: (\S+)", text)
    if missing_value:
        return f"{missing_value.group(1)} must be set, e.g. env=gym env.id=Acrobot-v1"
    not_bool = re.search(r"Value '([^']*)' is not a valid bool", text)
    if not_bool:
        return f"{key}={not_bool.group(1)!r} is not valid: expected true or false"
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return first


def _run_hydra_app(task: Callable[[Any], Any], program: str) -> None:
    """Run a Hydra app, reporting user errors as one line instead of Hydra's multi-line dump."""
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    config_module.register_schemas()
    show_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # makes Hydra re-raise, so we can word the message
    app = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(task)
    try:
        app()
        if _user_errors:
            raise _user_errors[0]
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
        sys.exit(143 if stop.signal_name == "SIGTERM" else 130)
    except KeyboardInterrupt:
        _fail(program, "interrupted")
    except OSError as error:  # an output folder that cannot be written, a full disk
        if show_traceback:
            raise
        where = error.filename or "the output folder"
        _fail(program, f"cannot write {where}: {error.strerror or error}; choose a writable folder "
                       "(hydra.run.dir=...) or free some space; earlier checkpoints are untouched")
    if _failed_jobs:
        _fail(program, f"{len(_failed_jobs)} sweep job(s) failed: {', '.join(_failed_jobs)} "
                       "(see error.txt in each; the other jobs' results are kept)")


def _resumed_config(run_dir: Path, new_overrides: List[str]):
    """The resumed run's own config (its original overrides), with this command's overrides on top."""
    from hydra import compose
    from omegaconf import OmegaConf

    from dqn_cli.report import read_overrides

    if not (run_dir / "checkpoints").is_dir():
        raise UserError(f"resume={run_dir}: not a dqn-train run dir (no checkpoints/ in it)")
    merged = {}
    for override in read_overrides(run_dir) + new_overrides:
        merged[override.split("=", 1)[0].lstrip("+~")] = override
    typed = config_module.validate(OmegaConf.to_object(compose(config_name="config",
                                                               overrides=list(merged.values()))))
    typed.resume = str(run_dir)
    return typed


def _remove_if_only_bookkeeping(run_dir: Path, bookkeeping: set) -> None:
    """A run refused before it trained leaves no directory behind (only Hydra's own files were there)."""
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= bookkeeping:
        shutil.rmtree(run_dir, ignore_errors=True)


def _train_task(cfg) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    import torch

    from dqn_cli.train import job_device, train

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    from omegaconf.errors import OmegaConfBaseException

    try:
        try:
            typed = config_module.validate(OmegaConf.to_object(cfg))
        except OmegaConfBaseException as error:  # e.g. a mandatory value (???) left unset
            raise ConfigError(explain_hydra_error(error)) from None
        if typed.resume is not None:
            typed = _resumed_config(Path(typed.resume), list(hydra_cfg.overrides.task))
        resume = typed.resume is not None
        if in_sweep:
            typed.device = job_device(typed.device, hydra_cfg.job.num, torch.cuda.device_count())
            # A requeued (SLURM/submitit) or re-run job finds its own unfinished checkpoints: continue them.
            if list(run_dir.glob("checkpoints/step_*.pt")) and not (run_dir / "summary.json").is_file():
                log.info(f"{run_dir} holds an unfinished run of this job: resuming it")
                (run_dir / "error.txt").unlink(missing_ok=True)
                resume = True
        summary = train(typed, run_dir, resume=resume)
    except Exception as error:
        if not in_sweep:
            if isinstance(error, TrainingInterrupted):
                _user_errors.append(error)  # reported after Hydra returns, as for user errors
                return float("nan")
            if isinstance(error, UserError):
                _user_errors.append(error)  # worded by _run_hydra_app, without Hydra's job-failure dump
                if cfg.get("resume"):
                    shutil.rmtree(run_dir / hydra_cfg.output_subdir, ignore_errors=True)
                else:
                    _remove_if_only_bookkeeping(run_dir, {".hydra", "train.log"})
                return float("nan")
            raise
        # One failed job must not end the sweep: record it and let the launcher go on.
        message = str(error) if isinstance(error, UserError) else traceback.format_exc()
        (run_dir / "error.txt").write_text(message + "\n")
        log.error(f"job failed ({run_dir}): {str(error).splitlines()[0] if str(error) else type(error).__name__}")
        return float("nan")
    best, last = summary["final_eval"]["best"], summary["final_eval"]["last"]
    print(f"run dir: {run_dir} | best.pt {best['mean']:.1f} ± {best['std']:.1f}, "
          f"last.pt {last['mean']:.1f} ± {last['std']:.1f} over {best['episodes']} greedy episodes "
          f"| {summary['steps']} steps in {summary['wall_time_s']:.1f} s")
    return best["mean"]


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - hydra is a hard dependency
    _HydraCallback = object


class SweepStatusCallback(_HydraCallback):
    """At the end of a multirun: say which jobs failed, so the command can exit non-zero."""

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        failed = sorted(str(p.parent.relative_to(sweep_dir)) for p in sweep_dir.glob("**/error.txt"))
        done = sorted(str(p.parent.relative_to(sweep_dir)) for p in sweep_dir.glob("**/summary.json"))
        print(f"sweep dir: {sweep_dir} | {len(done)} job(s) finished, {len(failed)} failed")
        _failed_jobs.extend(failed)
        if done:
            try:
                from dqn_cli.report import write_report

                write_report([sweep_dir])
                print(f"report: {sweep_dir / 'report.md'}")
            except Exception as error:  # a report problem must not hide the sweep's own outcome
                print(f"report: not written ({error})", file=sys.stderr)


def train_main() -> None:
    """`dqn-train [group=option ...] [key=value ...]` (Hydra command line)."""
    _run_hydra_app(_train_task, "dqn-train")


def report_main(argv: List[str] | None = None) -> None:
    """`dqn-report <sweep dir | run dirs ...> [--out DIR]`: aggregate runs into a table and plots."""
    import argparse

    parser = argparse.ArgumentParser(prog="dqn-report", description=report_main.__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="a sweep dir, or several run dirs")
    parser.add_argument("--out", type=Path, help="where to write (default: the sweep dir, or ./report)")
    args = parser.parse_args(argv)
    try:
        from dqn_cli.report import write_report

        out = write_report(args.paths, args.out)
    except UserError as error:
        _fail("dqn-report", str(error))
    print(f"report: {out / 'report.md'} (+ report.json, learning_curves.png, episode_returns.png)")
    print((out / "report.md").read_text().split("\n\n![")[0])


# ---------------------------------------------------------------------------------------------
# dqn-eval


@dataclasses.dataclass
class EvalArgs:
    run: str = ""
    """The run directory to evaluate (required)."""
    checkpoint: str = "best"
    """best | last."""
    episodes: int = 100
    """Greedy episodes to play."""
    video: bool = False
    """Also write an mp4 of one episode under <run>/videos/."""
    seed: int = -1
    """Seed of the first episode; -1 uses the run's final-evaluation seeds (reproduces summary.json)."""
    device: str = "cpu"
    """cpu | cuda | auto."""


def _parse_eval_args(argv: List[str]) -> EvalArgs:
    fields = {f.name: f for f in dataclasses.fields(EvalArgs)}
    values: Dict[str, Any] = {}
    for arg in argv:
        key, sep, raw = arg.partition("=")
        if not sep or key not in fields:
            raise UserError(f"unexpected argument {arg!r}; use key=value with keys: {', '.join(fields)}")
        kind = fields[key].type
        try:
            if kind == "int":
                values[key] = int(raw)
            elif kind == "bool":
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                values[key] = raw.lower() in ("true", "1", "yes")
            else:
                values[key] = raw
        except ValueError:
            raise UserError(f"{key}={raw!r} is not valid: expected {kind}") from None
    args = EvalArgs(**values)
    if not args.run:
        raise UserError("missing run=<run dir>, e.g. dqn-eval run=outputs/runs/<run-dir>")
    if args.checkpoint not in ("best", "last"):
        raise UserError(f"checkpoint={args.checkpoint!r} is not valid; choose best or last")
    if args.episodes <= 0:
        raise UserError(f"episodes={args.episodes} is out of range; allowed: an integer > 0")
    if args.device not in config_module.DEVICES:
        raise UserError(f"device={args.device!r} is not valid; choose one of: {' | '.join(config_module.DEVICES)}")
    return args


def eval_main(argv: List[str] | None = None) -> None:
    """`dqn-eval run=<run dir> [checkpoint=best|last] [episodes=N] [video=true] [seed=N]`."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(eval_main.__doc__)
        for f in dataclasses.fields(EvalArgs):
            print(f"  {f.name}={f.default!r}")
        return
    try:
        from dqn_cli.evaluate_run import evaluate_run

        args = _parse_eval_args(argv)
        result = evaluate_run(Path(args.run), args.checkpoint, args.episodes, args.video, args.seed, args.device)
    except UserError as error:
        _fail("dqn-eval", str(error))
    except KeyboardInterrupt:
        _fail("dqn-eval", "interrupted")
    line = (f"{result['checkpoint']}.pt: {result['mean']:.2f} ± {result['std']:.2f} over "
            f"{result['episodes']} greedy episodes ({result['env_id']}) -> {result['eval_json']}")
    if result.get("video"):
        line += f" | video: {result['video']}"
    print(line)


if __name__ == "__main__":  # pragma: no cover
    train_main()
