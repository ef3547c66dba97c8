"""What a run reports as it trains: TensorBoard points, the tracker, the console and the divergence check."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import torch

from dqn_cli import tb
from dqn_cli.checkpoint import kept_checkpoint
from dqn_cli.config import TrainConfig
from dqn_cli.console import Progress
from dqn_cli.errors import TrainingDiverged
from dqn_cli.evaluate import EvalResult
from dqn_cli.learners.update import LearnResult, td_loss
from dqn_cli.state import Counts, FinishedEpisode
from dqn_cli.trackers import Tracker

log = logging.getLogger("dqn_cli")


# What the HPARAMS table shows after a run's own overrides: the settings that tell runs apart most often.
KEY_HYPERPARAMETERS = ("env.id", "seed", "total_steps", "total_episodes", "network.name", "network.hidden_sizes",
                       "buffer.name", "buffer.capacity", "buffer.n_step", "target.name", "target.interval",
                       "optimizer.name", "optimizer.lr", "exploration.name", "gamma", "batch_size", "learning_starts",
                       "train_freq", "double_q", "loss")


def override_keys(flat_config: Dict[str, Any], overrides: Sequence[str]) -> List[str]:
    """The config keys the run's overrides set (its seed, the swept keys; `target=soft` is target.name)."""
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides
            if o.lstrip("+~").split("=", 1)[0].split(".")[0] not in ("log", "tracker", "hydra", "resume", "reproduce")]
    keys = [key if key in flat_config else "env.id" if key == "env" else f"{key}.name" for key in keys]
    return [key for key in dict.fromkeys(keys) if key in flat_config]


def hparams(flat_config: Dict[str, Any], overrides: Sequence[str]) -> Dict[str, Any]:
    """The run's overrides first, then the key hyperparameters that are set, each once."""
    ordered = override_keys(flat_config, overrides) + [key for key in KEY_HYPERPARAMETERS
                                                       if flat_config.get(key) is not None]
    return {key: flat_config[key] for key in dict.fromkeys(ordered) if key in flat_config}


class UpdateLog:
    """The updates since the last TensorBoard point, kept as their LearnResults and reduced only
    when their TD loss and mean Q are written (reducing per update would cost a noticeable share
    of a small update). Per-update values read back from a checkpoint come first."""

    def __init__(self, losses: Sequence[float] = (), mean_qs: Sequence[float] = ()):
        self.results: List[LearnResult] = []
        self.restored = (list(losses), list(mean_qs))

    def append(self, result: LearnResult) -> None:
        self.results.append(result)

    def __bool__(self) -> bool:
        return bool(self.results or self.restored[0])

    def clear(self) -> None:
        self.results, self.restored = [], ([], [])

    def per_update(self) -> Tuple[List[float], List[float]]:
        """(TD loss, mean Q) of every update, in order."""
        losses, mean_qs = list(self.restored[0]), list(self.restored[1])
        if self.results:
            q_taken = torch.stack([r.q_taken for r in self.results])
            targets = torch.stack([r.targets for r in self.results])
            weights = None if self.results[0].weights is None else torch.stack([r.weights for r in self.results])
            loss = td_loss(q_taken, targets, self.results[0].loss_kind, weights)  # the update's own loss
            losses += loss.mean(dim=1).tolist()
            mean_qs += q_taken.mean(dim=1).tolist()
        return losses, mean_qs


class Metrics:
    """TensorBoard scalars and the console's progress for one run."""

    def __init__(self, run_dir: Path, cfg: TrainConfig, start: Counts, resumed: bool, tracker: Tracker):
        """Reads cfg.log and the budget; `start` is where a resumed run's counters stand."""
        start_step = start.step
        # purge_step drops points a killed process logged after its checkpoint, so curves do not double.
        self.writer = tb.TensorBoardLogger(run_dir, purge_step=start_step + 1 if resumed else None)
        self.tracker = tracker
        self.progress = Progress(cfg.budget, str(cfg.log.progress), cfg.log.console_interval_s,
                                 initial=start.of(cfg.budget_unit), unit=cfg.budget_unit)
        self.checkpoint_dir = run_dir / "checkpoints"
        self.last_point_time, self.last_point_step = time.perf_counter(), start_step

    def scalar(self, tag: str, value: float, step: int) -> None:
        """To TensorBoard and to the tracker (if any), under the same tag."""
        self.writer.scalar(tag, value, step)
        self.tracker.scalar(tag, value, step)

    def episode(self, episode: FinishedEpisode) -> None:
        self.scalar(tb.EPISODE_RETURN, episode.episode_return, episode.step)
        self.scalar(tb.EPISODE_LENGTH, episode.length, episode.step)

    def episodes_ended_together(self, episodes: List[FinishedEpisode]) -> None:
        """The mean return and length of the episodes that ended in one vector step, as one point at
        its last env step: with a hundred envs, a point per episode would cost more than the step."""
        if episodes:
            self.scalar(tb.EPISODE_RETURN, sum(e.episode_return for e in episodes) / len(episodes), episodes[-1].step)
            self.scalar(tb.EPISODE_LENGTH, sum(e.length for e in episodes) / len(episodes), episodes[-1].step)

    def train_point(self, step: int, epsilon: float, updates: UpdateLog) -> None:
        """Epsilon, speed, and the TD loss and mean Q of the updates since the last point; the loss
        is checked here, not after every update: reading a loss back waits for a GPU."""
        now = time.perf_counter()
        self.scalar(tb.EPSILON, epsilon, step)
        self.scalar(tb.STEPS_PER_SECOND, (step - self.last_point_step) / (now - self.last_point_time), step)
        if updates:
            losses, mean_qs = updates.per_update()
            loss = sum(losses) / len(losses)
            if not math.isfinite(loss):
                raise TrainingDiverged(f"the TD loss became {loss} between steps {self.last_point_step} and "
                                       f"{step}; {kept_checkpoint(self.checkpoint_dir)}")
            self.scalar(tb.TD_LOSS, loss, step)
            self.scalar(tb.MEAN_Q, sum(mean_qs) / len(mean_qs), step)
            updates.clear()
        self.last_point_time, self.last_point_step = now, step

    def evaluation(self, step: int, result: EvalResult, new_best: bool) -> None:
        """TensorBoard, the console, train.log and the progress bar all get each evaluation."""
        self.scalar(tb.EVAL_MEAN, result.mean, step)
        self.scalar(tb.EVAL_STD, result.std, step)
        log.info(f"eval @ {step:,}: {result.mean:.1f} ± {result.std:.1f} over {len(result.returns)} episodes"
                 + (" (new best)" if new_best else ""))
        self.progress.last_eval = result.mean

    def final(self, flat_config: Dict[str, Any], overrides: Sequence[str], final: Dict[str, EvalResult],
              step: int) -> None:
        metrics = {tb.FINAL_BEST_MEAN: final["best"].mean, tb.FINAL_BEST_STD: final["best"].std,
                   tb.FINAL_LAST_MEAN: final["last"].mean, tb.FINAL_LAST_STD: final["last"].std}
        leading = override_keys(flat_config, overrides)
        self.writer.hparams(hparams(flat_config, overrides), metrics, step, leading=leading)
        self.tracker.final(metrics)
        self.writer.close()

    def close_progress(self, step: int) -> None:
        """End of the loop (finished or stopped): close the console's bar, flush the events."""
        self.progress.close(step)
        self.writer.flush()

    def close(self) -> None:
        """The run's process is done with it (finished, stopped or failed)."""
        self.tracker.close()

