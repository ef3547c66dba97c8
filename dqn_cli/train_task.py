"""What dqn-train runs inside Hydra: the task of one run (or of one sweep job), and the callback
that closes a sweep with its report."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import sys
import traceback
from pathlib import Path
from typing import List, Optional

from dqn_cli import sweep_stop
from dqn_cli.compose import config_for_run, remove_if_only_bookkeeping
from dqn_cli.console import fail, prefix_log_lines, record_in_train_log, result_line, say
from dqn_cli.errors import (EnvBroken, RunAlreadyFinished, TrainingDiverged, TrainingInterrupted, UserError,
                            hydra_quoted)
from dqn_cli.startup import start_up_done

log = logging.getLogger("dqn_cli")


class TrainTask:
    """dqn-train's Hydra task. Hydra's main returns nothing, so a single run's user error or stop
    is kept here (`error`) and reported after Hydra returns, without its job-failure dump. In a
    sweep, a failed job writes error.txt and the launcher goes on."""

    def __init__(self):
        self.error: Optional[BaseException] = None

    def __call__(self, cfg) -> Optional[float]:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        start_up_done()
        hydra_cfg = HydraConfig.get()
        run_dir = Path(hydra_cfg.runtime.output_dir)
        in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
        if in_sweep:
            prefix_log_lines(f"[{job_identity(hydra_cfg)}] ")  # parallel jobs' lines interleave on the console
            sweep_stop.catch_stop_signals(forward_to_workers=False)
            if sweep_stop.stopped_by:
                return self._record_failed_job(run_dir, f"not started: the sweep was stopped by {sweep_stop.stopped_by}")
            (run_dir / "error.txt").unlink(missing_ok=True)  # an earlier attempt's, in a continued sweep
        try:
            summary = self._train(cfg, hydra_cfg, run_dir, in_sweep)
        except (UserError, TrainingInterrupted, RunAlreadyFinished) as error:
            if isinstance(error, (TrainingInterrupted, TrainingDiverged, EnvBroken)):  # a refusal writes nothing
                record_in_train_log(str(error) if isinstance(error, TrainingInterrupted) else f"error: {error}")
            if in_sweep:
                if isinstance(error, TrainingInterrupted):
                    sweep_stop.note_stop(error.signal_name)
                    leave_to_slurm(error)
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
        log.info(result_line(run_dir, summary))  # console and train.log
        return summary["final_eval"]["best"]["mean"]

    @staticmethod
    def _train(cfg, hydra_cfg, run_dir: Path, in_sweep: bool) -> dict:
        import torch

        from dqn_cli.run.checkpointer import final_summary
        from dqn_cli.run.train import train
        from dqn_cli.runtime import cores_per_job, job_device

        typed = config_for_run(cfg, list(hydra_cfg.overrides.task), hydra_cfg.runtime.choices.get("env"))
        resume = typed.resume is not None
        if typed.reproduce is not None:  # Hydra saved the fresh defaults; the run trains the original's config
            from omegaconf import OmegaConf

            (run_dir / hydra_cfg.output_subdir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(typed)))
        if in_sweep:
            typed.device = job_device(typed.device, hydra_cfg.job.num, torch.cuda.device_count())
            # A continued sweep (hydra.sweep.dir given again) keeps the jobs that finished; in a new sweep a
            # finished run there is another job's with the same overrides (seed=0,0), refused below.
            continued = any(o.startswith("hydra.sweep.dir=") for o in hydra_cfg.overrides.hydra)
            finished = final_summary(run_dir / "summary.json") if continued else None
            if finished is not None:
                log.info(f"{run_dir} holds this job's finished run: kept as it is")
                return finished
            # A requeued (SLURM/submitit) or re-run job finds its own unfinished checkpoints: continue them.
            if list(run_dir.glob("checkpoints/step_*.pt")) and final_summary(run_dir / "summary.json") is None:
                log.info(f"{run_dir} holds an unfinished run of this job: resuming it")
                (run_dir / "error.txt").unlink(missing_ok=True)
                resume = True
        launcher = hydra_cfg.get("launcher") or {}
        cores = cores_per_job(str(launcher.get("_target_", "")), launcher.get("n_jobs")) if in_sweep else None
        return train(typed, run_dir, resume=resume, overrides=list(hydra_cfg.overrides.task),
                     sweep=Path(hydra_cfg.sweep.dir).name if in_sweep else None, cores=cores)

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
    def _record_failed_job(run_dir: Path, message: str) -> Optional[float]:
        """One failed job must not end the sweep: say why in its error.txt and let the launcher go on."""
        (run_dir / "error.txt").write_text(message + "\n")
        log.error(f"job failed ({run_dir}): {message.strip().splitlines()[0] if message.strip() else 'no message'}")
        return None  # no objective: an Optuna sweep records the trial as failed and goes on


def leave_to_slurm(stop: TrainingInterrupted) -> None:
    """A submitit job on SLURM stopped by a signal (preemption, `scontrol requeue`, the time limit) ends
    without a result: the sweep waits on, and the requeued job resumes from the checkpoint just written."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return
    from dqn_cli.runtime import EXIT_STATUS

    log.info(f"stopped by {stop.signal_name} in SLURM job {os.environ.get('SLURM_JOB_ID')} at step {stop.step:,}; "
             "checkpoint written: a requeued job resumes it")
    raise SystemExit(EXIT_STATUS.get(stop.signal_name or "", 143))


def job_identity(hydra_cfg) -> str:
    """'seed=1 target=soft': this job's values of what its sweep varies (else 'job 3')."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    swept = set((hydra_cfg.sweeper.get("params") or {}).keys())
    try:
        typed = OmegaConf.load(Path(hydra_cfg.sweep.dir) / "multirun.yaml").hydra.overrides.task
        swept |= {o.key_or_group for o in OverridesParser.create().parse_overrides(list(typed)) if o.is_sweep_override()}
    except (OSError, OmegaConfBaseException, HydraException):
        pass  # no multirun.yaml to read: the job number says which job it is
    own = [o for o in hydra_cfg.overrides.task if o.split("=", 1)[0].lstrip("+~") in swept]
    return " ".join(own) or f"job {hydra_cfg.job.num}"


# The sweep dir and the folders above it that this sweep creates, the sweep dir first.
_new_sweep_folders: List[Path] = []


def remove_unused_sweep_dir() -> None:
    """A sweep refused before any job ran (a value of the wrong type, an unknown key) leaves no
    sweep dir holding only Hydra's multirun.yaml."""
    if not _new_sweep_folders or not _new_sweep_folders[0].is_dir():
        return
    if {p.name for p in _new_sweep_folders[0].iterdir()} <= {"multirun.yaml"}:
        shutil.rmtree(_new_sweep_folders[0], ignore_errors=True)
        for folder in _new_sweep_folders[1:]:
            with contextlib.suppress(OSError):
                folder.rmdir()


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
        sweep_dir = Path(config.hydra.sweep.dir)
        _new_sweep_folders[:] = [folder for folder in (sweep_dir, *sweep_dir.parents) if not folder.exists()]
        sweep_stop.catch_stop_signals(forward_to_workers=True)

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        failed = sorted(str(p.parent.relative_to(sweep_dir)) for p in sweep_dir.glob("**/error.txt"))
        done = sorted(str(p.parent.relative_to(sweep_dir)) for p in sweep_dir.glob("**/summary.json"))
        say(f"sweep dir: {sweep_dir} | {len(done)} job(s) finished, {len(failed)} failed")
        if done:
            try:
                from dqn_cli.report.writer import write_report

                write_report([sweep_dir])
                say(f"report: {sweep_dir / 'report.md'}")
            except Exception as error:  # a report problem must not hide the sweep's own outcome
                print(f"report: not written ({error})", file=sys.stderr)
        if sweep_stop.stopped_by:
            from dqn_cli.runtime import EXIT_STATUS

            print(f"dqn-train: sweep stopped by {sweep_stop.stopped_by}; jobs that were training wrote a checkpoint. "
                  f"Continue the sweep with: dqn-train {' '.join(shlex.quote(a) for a in sys.argv[1:])} "
                  f"{shlex.quote('hydra.sweep.dir=' + hydra_quoted(str(sweep_dir)))}", file=sys.stderr)
            sys.exit(EXIT_STATUS.get(sweep_stop.stopped_by, 130))
        if failed:
            fail("dqn-train", f"{len(failed)} sweep job(s) failed: {', '.join(failed)} "
                               "(see error.txt in each; the other jobs' results are kept)")
