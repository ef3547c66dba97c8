"""train(cfg, run_dir) -> summary: one run from set-up to summary.json, around an algorithm's loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

from dqn_cli.algorithms import ALGORITHMS
from dqn_cli.checkpoint import RunDirLock, kept_checkpoint
from dqn_cli.config import TrainConfig
from dqn_cli.errors import EnvBroken, TrainingDiverged, TrainingInterrupted
from dqn_cli.replay import NonFinitePriority
from dqn_cli.run.assembly import Run
from dqn_cli.runtime import StopOnSignal, subnormals_flushed


def train(cfg: TrainConfig, run_dir: Path, resume: bool = False,
          should_stop: Optional[Callable[[int], bool]] = None, overrides: Sequence[str] = (),
          sweep: Optional[str] = None, cores: Optional[int] = None) -> Dict[str, Any]:
    """Train as `cfg` says, writing checkpoints, TensorBoard events and summary.json to run_dir.

    resume=True continues from the newest readable periodic checkpoint in run_dir (exactly, for
    envs whose state can be copied). `should_stop(step)` is asked after every step; by default
    SIGINT/SIGTERM/SIGHUP make it true, and the loop then checkpoints and raises TrainingInterrupted.
    `overrides` (the command line's) lead the run's HPARAMS entry and name its tracker run;
    `sweep` (the sweep dir's name) groups tracker runs; `cores`, the cores a sweep job may take (all
    by default).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    # Signals are caught from the start, so a SIGTERM during set-up also ends in a clean stop.
    with StopOnSignal() as stop_on_signal, RunDirLock(run_dir), subnormals_flushed():
        should_stop = should_stop or stop_on_signal
        run = Run(cfg, run_dir, resume, overrides, sweep, cores)
        run.evaluator.stop = lambda: should_stop(run.state.step)
        try:
            try:
                run.evaluator.catch_up()
                if run.evaluator.solved_at is None:
                    ALGORITHMS[cfg.algorithm.name].loop(run, should_stop)
                else:  # the caught-up evaluation solved the env: training ends where it stopped
                    run.checkpoints.save_periodic()
            except NonFinitePriority as error:
                raise TrainingDiverged(f"{error}; {kept_checkpoint(run.checkpoints.dir)} (try a lower "
                                       "optimizer.lr)") from None
            except TrainingInterrupted as stop:
                raise TrainingInterrupted(stop.step, run_dir, stop_on_signal.signal_name) from None
            except EnvBroken as broken:
                raise EnvBroken(f"{broken} (at step {run.state.step:,}); {run.checkpoints.save_after_env_failure()}") \
                    from None
            finally:
                run.metrics.close_progress(run.state.count(cfg.budget_unit))
                run.algorithm.close()
                run.envs.close()
            summary = run.evaluator.finish(stop=lambda: should_stop(run.state.step), overrides=list(overrides))
        finally:
            run.metrics.close()  # the tracker's run ends with this process, however it ends
        if summary.get("partial"):
            raise TrainingInterrupted(run.state.step, run_dir, stop_on_signal.signal_name,
                                      during="summary.json holds the final evaluation so far, marked partial")
        return summary
