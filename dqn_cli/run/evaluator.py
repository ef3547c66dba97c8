"""A run's evaluations: periodic greedy evaluation that keeps best.pt, the confirmation that a run
is solved, the final evaluation of best.pt and last.pt, and summary.json."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from dqn_cli.checkpoint import atomic_write_json
from dqn_cli.config import flatten
from dqn_cli.envs import EVAL_SEED_OFFSET, FINAL_EVAL_SEED_OFFSET
from dqn_cli.errors import TrainingInterrupted
from dqn_cli.evaluate import EvalResult, evaluate, greedy_policy
from dqn_cli.run.checkpointer import Checkpointer
from dqn_cli.run.parts import RunParts

log = logging.getLogger("dqn_cli")


class EvaluationProgress:
    """Says how far a long evaluation got (episodes done), every few seconds, once it takes a while."""

    def __init__(self, what: str, every_s: float = 5.0):
        self.what, self.every_s = what, every_s
        self.started = self.last = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every_s:
            self.last = now
            log.info(f"{self.what}: {done}/{total} episodes ({now - self.started:.0f} s)")


class Evaluator:
    """Greedy evaluations of the run's algorithm (its `eval_q`), on seeds that training never uses."""

    def __init__(self, run: RunParts, checkpoints: Checkpointer):
        self.run, self.checkpoints = run, checkpoints
        self.seconds = 0.0  # spent in periodic evaluations, solved confirmations included
        self.solved_at = None  # the step eval.stop_when_solved stopped training at, if it did
        self.evaluated_at = None  # the step of the last periodic evaluation (vector envs pass budgets unevenly)
        # Asked after every evaluation step: a signal during an evaluation ends it (train() sets it).
        self.stop: Callable[[], bool] = lambda: False

    def _greedy_episodes(self, episodes: int, first_seed: int, **kwargs) -> EvalResult:
        run = self.run
        return evaluate(greedy_policy(run.algorithm.eval_q, run.device), run.cfg.env, episodes, seed=first_seed,
                        **kwargs)

    def evaluate(self, episodes: int) -> EvalResult:
        """Greedy episodes on the periodic-evaluation seeds (never the final evaluation's)."""
        return self._greedy_episodes(episodes, self.run.cfg.seed + EVAL_SEED_OFFSET, stop=self.stop)

    def evaluate_and_keep_best(self) -> Optional[EvalResult]:
        """A periodic evaluation: logged, and saved as best.pt when it is the best so far; None when
        a stop request cut it short (the loop then checkpoints and stops)."""
        run, started = self.run, time.perf_counter()
        result = self.evaluate(run.cfg.eval.episodes)
        run.state.eval_pending = not result.complete
        if run.state.eval_pending:
            return None
        self.evaluated_at = run.state.step
        new_best = run.state.record_if_best(result.mean, result.std)
        run.metrics.evaluation(run.state.step, result, new_best)
        if new_best:
            self.checkpoints.save("best")
        self.seconds += time.perf_counter() - started
        return result

    def confirms_solved(self, result: Optional[EvalResult]) -> bool:
        """eval.stop_when_solved: whether this periodic evaluation reached env.solve_threshold and a
        second one, over eval.final_episodes episodes, confirms it (a few lucky episodes do not)."""
        cfg, step = self.run.cfg, self.run.state.step
        threshold = cfg.env.solve_threshold
        if result is None or not cfg.eval.stop_when_solved or threshold is None or result.mean < threshold:
            return False
        started = time.perf_counter()
        confirmed = self.evaluate(max(cfg.eval.final_episodes, cfg.eval.episodes))
        self.seconds += time.perf_counter() - started
        if not confirmed.complete:
            return False
        if confirmed.mean < threshold:
            log.info(f"not solved yet: {confirmed.mean:.1f} over {len(confirmed.returns)} episodes is below "
                     f"env.solve_threshold ({threshold:g})")
            return False
        self.solved_at = step
        log.info(f"solved: {confirmed.mean:.1f} over {len(confirmed.returns)} episodes >= env.solve_threshold "
                 f"({threshold:g}) at step {step:,}; training stops here (eval.stop_when_solved=false "
                 "trains the whole budget)")
        return True

    def catch_up(self) -> None:
        """On resume: the periodic evaluation the stop cut short, as the uninterrupted run played it."""
        if self.run.state.eval_pending:
            self.confirms_solved(self.evaluate_and_keep_best())

    def evaluate_at_end(self) -> None:
        """The end of training always competes for best.pt (unless a periodic evaluation just did)."""
        if self.solved_at is None and self.evaluated_at != self.run.state.step:
            self.evaluate_and_keep_best()
            if self.run.state.eval_pending:  # a stop cut it short: checkpoint; the resumed run plays it first
                self.checkpoints.save_periodic()
                raise TrainingInterrupted(self.run.state.step, self.run.run_dir)

    def final_evaluation(self, checkpoint: str, stop: Callable[[], bool]) -> EvalResult:
        """best.pt or last.pt over eval.final_episodes greedy episodes on the final-evaluation seeds."""
        self.checkpoints.load_weights(checkpoint)
        cfg = self.run.cfg
        return self._greedy_episodes(cfg.eval.final_episodes, cfg.seed + FINAL_EVAL_SEED_OFFSET, stop=stop,
                                     on_episode=EvaluationProgress(f"final evaluation of {checkpoint}.pt"))

    def finish(self, stop: Callable[[], bool], overrides: Sequence[str]) -> Dict[str, Any]:
        """Evaluate best.pt and last.pt; write the hparams entry and summary.json. Stopped early,
        summary.json holds what was evaluated, marked partial, and nothing goes to TensorBoard."""
        run, train_seconds, final_started = self.run, self.run.clock.since_loop_start(), time.perf_counter()
        final = {"best": self.final_evaluation("best", stop)}
        # When the best evaluation was the final one, best.pt holds last.pt's weights: same seeds, same scores.
        if run.state.best_eval["step"] == run.state.step:
            final["last"] = final["best"]
        elif final["best"].complete:
            final["last"] = self.final_evaluation("last", stop)
        else:  # stopped before last.pt's turn
            final["last"] = EvalResult(np.zeros(0), np.zeros(0, dtype=np.int64), complete=False)
        complete = final["best"].complete and final["last"].complete
        timings = {"startup_s": run.clock.startup_s, "wall_time_s": run.clock.since_start(),
                   "train_time_s": train_seconds, "periodic_eval_time_s": self.seconds,
                   "final_eval_time_s": time.perf_counter() - final_started}
        result = self.summary(final, timings)
        if complete:
            run.metrics.final(flatten(self.checkpoints.config_dict), overrides, final, run.state.step)
        else:
            result["partial"] = True
            result["solved"] = None
        atomic_write_json(run.run_dir / "summary.json", result)
        if complete:
            run.metrics.tracker.artifacts(self.checkpoints.config_dict,
                                          [run.run_dir / "summary.json", self.checkpoints.dir / "best.pt"])
        return result

    def summary(self, final: Dict[str, EvalResult], timings: Dict[str, Any]) -> Dict[str, Any]:
        """summary.json: what was trained, how long it took, and how well best.pt and last.pt play."""
        cfg, state = self.run.cfg, self.run.state
        trained_seconds = max(timings["train_time_s"] - timings["periodic_eval_time_s"], 1e-9)
        trained_steps = state.step - self.run.clock.start_step
        threshold = cfg.env.solve_threshold
        return {
            "env_id": cfg.env.id,
            "seed": cfg.seed,
            "steps": state.step,
            "episodes": state.episodes,
            "updates": state.updates,
            "budget": {"total": cfg.budget, "unit": str(cfg.budget_unit)},  # total_steps, or total_episodes
            **{name: None if seconds is None else round(seconds, 3) for name, seconds in timings.items()},
            # env steps per second of training alone; wall_time_s covers start-up and every evaluation
            "steps_per_second": round(trained_steps / trained_seconds, 1),
            # a resumed run: where this process started, and the wall time of all its processes together
            "resumed_at_step": self.run.clock.start_step or None,
            "total_wall_time_s": round(self.run.clock.earlier_s + timings["wall_time_s"], 3),
            "best_periodic_eval": {**state.best_eval, "episodes": cfg.eval.episodes},
            "final_eval": {name: result.as_dict() for name, result in final.items()},
            "solve_threshold": threshold,
            "solved": threshold is not None and final["best"].mean >= threshold,
            "stopped_when_solved": self.solved_at,  # the step, or None: trained the whole budget
            "provenance": self.run.provenance,  # the process that finished the run; train.log has each one's
            **({"reproduces": self.run.reproduces} if self.run.reproduces is not None else {}),
        }
