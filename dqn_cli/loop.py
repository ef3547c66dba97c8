"""train(cfg, run_dir) -> summary: the whole DQN algorithm in one readable loop (`run_loop`),
and the parts it is made of (`Run`), built fresh or from a checkpoint."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import torch
from omegaconf import OmegaConf

from dqn_cli.agent import DQNAgent
from dqn_cli.checkpoint import (
    RunDirLock,
    atomic_write_json,
    find_resumable,
    kept_checkpoint,
    periodic_checkpoints,
    replay_path,
    link_atomically,
    load_checkpoint,
    prune_periodic,
    restore_rng_state,
    rng_state,
    save_checkpoint,
    save_replay,
    to_numpy_tree,
    to_tensor_tree,
)
from dqn_cli.config import TrainConfig, check_resume_compatible, flatten, to_dict
from dqn_cli.envs import (
    EVAL_SEED_OFFSET,
    FINAL_EVAL_SEED_OFFSET,
    TRAIN_SEED_OFFSET,
    capture_env_states,
    game_over,
    make_vector_env,
    real_next_obs,
    restart_episodes,
    restore_env_states,
    shape_rewards,
)
from dqn_cli.errors import ConfigError, RunAlreadyFinished, RunDirError, TrainingDiverged, TrainingInterrupted
from dqn_cli.evaluate import EvalResult, evaluate, greedy_policy
from dqn_cli.exploration import make_schedule
from dqn_cli.metrics import Metrics, UpdateLog, hparams, summary
from dqn_cli.networks import build_q_network
from dqn_cli.replay import NonFinitePriority, build_replay, check_replay_fits_in_memory
from dqn_cli.runtime import (StopOnSignal, device_for, seconds_since_launch, seed_everything,
                             subnormals_flushed, torch_threads)
from dqn_cli.state import Counts, TrainingState, crossings  # noqa: F401 (crossings: re-exported)
from dqn_cli.trackers import build_tracker, run_name

log = logging.getLogger("dqn_cli")


def train(cfg: TrainConfig, run_dir: Path, resume: bool = False,
          should_stop: Optional[Callable[[int], bool]] = None, overrides: Sequence[str] = (),
          sweep: Optional[str] = None) -> Dict[str, Any]:
    """Train a DQN as `cfg` says, writing checkpoints, TensorBoard events and summary.json to run_dir.

    resume=True continues from the newest readable periodic checkpoint in run_dir (exactly, for
    envs whose state can be copied). `should_stop(step)` is asked after every step; by default
    SIGINT/SIGTERM/SIGHUP make it true, and the loop then checkpoints and raises TrainingInterrupted.
    `overrides` (the command line's) lead the run's HPARAMS entry and name its tracker run;
    `sweep` (the sweep dir's name) groups tracker runs.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    # Signals are caught from the start, so a SIGTERM during set-up also ends in a clean stop.
    with StopOnSignal() as stop_on_signal, RunDirLock(run_dir), subnormals_flushed():
        should_stop = should_stop or stop_on_signal
        run = Run(cfg, run_dir, resume, overrides, sweep)
        try:
            try:
                run_loop(run, should_stop)
            except NonFinitePriority as error:
                raise TrainingDiverged(f"{error}; {kept_checkpoint(run.checkpoint_dir)} (try a lower "
                                       "optimizer.lr)") from None
            except TrainingInterrupted as stop:
                raise TrainingInterrupted(stop.step, run_dir, stop_on_signal.signal_name) from None
            finally:
                run.metrics.pause(run.state.count(cfg.budget_unit))
                run.envs.close()
            summary = run.finish(stop=lambda: should_stop(run.state.step))
        finally:
            run.metrics.close()  # the tracker's run ends with this process, however it ends
        if summary.get("partial"):
            raise TrainingInterrupted(run.state.step, run_dir, stop_on_signal.signal_name,
                                      during="summary.json holds the final evaluation so far, marked partial")
        return summary


def run_loop(run: "Run", should_stop: Callable[[int], bool]) -> None:
    """DQN: act, step, store, learn, update the target; then log, evaluate and checkpoint."""
    cfg, state, agent, replay = run.cfg, run.state, run.agent, run.replay
    while state.count(cfg.budget_unit) < cfg.budget:
        # act: uniformly random until learning starts, then epsilon-greedy
        epsilon = run.epsilon_at(state.count(cfg.exploration.unit))
        if state.step < cfg.learning_starts:
            actions = run.rng.integers(0, run.n_actions, size=cfg.env.num_envs)
        else:
            actions = agent.act(state.obs, epsilon, run.rng, run.n_actions)
        next_obs, rewards, terminated, truncated, info = run.envs.step(actions)

        # store: a truncated transition keeps terminated=False, so it still bootstraps
        done = terminated | truncated
        replay.add(state.obs, actions, shape_rewards(rewards, cfg.env.reward_scale, cfg.env.reward_clip),
                   real_next_obs(next_obs, done, info), terminated, truncated)
        before = state.counts
        for episode in state.record_step(next_obs, rewards, game_over(done, info)):
            run.metrics.episode(episode)
        state.advance(cfg.env.num_envs)

        # learn (train_freq and target.interval count steps or episodes)
        if state.step >= cfg.learning_starts:
            replay.anneal(state.count(cfg.budget_unit) / cfg.budget)  # prioritized replay's beta -> 1
            for _ in range(state.passed(before, cfg.train_freq, cfg.train_freq_unit) * cfg.gradient_steps):
                batch = replay.sample(cfg.batch_size)
                result = agent.learn(batch)
                replay.update_priorities(batch, result)
                run.updates.append(result)
                state.updates += 1
            target_due = state.passed(before, cfg.target.interval, cfg.target.interval_unit)
            if target_due:  # several envs can pass several intervals in one step
                agent.update_target(target_due)

        # log, evaluate, checkpoint (every so many env steps)
        if state.passed(before, cfg.log.train_interval):
            run.metrics.train_point(state.step, epsilon, run.updates)
        if cfg.eval.interval and state.passed(before, cfg.eval.interval):
            if run.solved(run.evaluate_and_keep_best()):
                break  # eval.stop_when_solved: these weights are last.pt
        checkpoint_due = state.passed(before, run.checkpoint_interval)
        if checkpoint_due:
            run.save_periodic_checkpoint()
        run.metrics.progress.update(state.count(cfg.budget_unit), state.recent, epsilon)
        if should_stop(state.step):
            if not checkpoint_due:
                run.save_periodic_checkpoint()
            raise TrainingInterrupted(state.step, run.run_dir)

    # The end of training always competes for best.pt, and last.pt is always the final weights.
    if run.solved_at is None and (not cfg.eval.interval or state.step % cfg.eval.interval):
        run.evaluate_and_keep_best()
    run.save_periodic_checkpoint()


def check_budget_left(run_dir: Path, reached: Counts, cfg: TrainConfig, saved: Dict[str, Any]) -> None:
    """A resume needs a budget at or past what the run reached; a finished run is left alone. Vector
    envs may end a run past its budget (several episodes end at once): that same budget is finished."""
    key, count = f"total_{cfg.budget_unit}s", reached.of(cfg.budget_unit)
    if count > cfg.budget and saved.get(key) != cfg.budget:
        reached_what = "step" if cfg.budget_unit == "step" else "episode count"
        raise ConfigError(f"{key}={cfg.budget} is below the {reached_what} this run reached ({count}); pass "
                          f"{key}={count} or more")
    finished = final_summary(run_dir / "summary.json")
    if finished is not None and count >= cfg.budget:
        raise RunAlreadyFinished(run_dir, reached.step, key, count)
    if finished is not None and finished.get("stopped_when_solved") is not None and cfg.eval.stop_when_solved:
        raise RunAlreadyFinished(run_dir, reached.step, solved=True)


def final_summary(path: Path) -> Optional[Dict[str, Any]]:
    """A run's summary.json if it is complete (not marked partial), else None."""
    try:
        summary = json.loads(path.read_text())
        return None if summary.get("partial", False) else summary
    except (OSError, ValueError, AttributeError):
        return None


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


def warn_about_settings(cfg: TrainConfig) -> None:
    """Settings that are valid but probably not what was meant."""
    if cfg.total_episodes is not None:
        return  # how many steps the episodes take is not known ahead
    if cfg.learning_starts >= cfg.total_steps:
        log.warning(f"learning_starts ({cfg.learning_starts:,}) >= total_steps ({cfg.total_steps:,}): no update will "
                    "happen; lower learning_starts or raise total_steps")
    if cfg.eval.interval > cfg.total_steps:
        log.warning(f"eval.interval ({cfg.eval.interval:,}) > total_steps ({cfg.total_steps:,}): only the "
                    "end-of-training evaluation will pick best.pt")


class Run:
    """The parts of one training run and what is done with them between steps: evaluation,
    checkpoints (packing and unpacking), the final evaluation and the summary."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, resume: bool, overrides: Sequence[str] = (),
                 sweep: Optional[str] = None):
        self.started = time.perf_counter()
        self.cfg, self.run_dir, self.checkpoint_dir = cfg, run_dir, run_dir / "checkpoints"
        self.config_dict, self.overrides = to_dict(cfg), list(overrides)
        self.rng = seed_everything(cfg.seed)
        resumed = find_resumable(self.checkpoint_dir) if resume else None  # before anything is written
        if resumed is not None:
            check_resume_compatible(resumed.state["config"], cfg)
            counters = resumed.state["counters"]
            check_budget_left(run_dir, Counts(counters["step"], counters["episodes"]), cfg, resumed.state["config"])
        elif periodic_checkpoints(self.checkpoint_dir):
            raise RunDirError(f"{run_dir} already holds a run (checkpoints/step_*.pt); continue it with "
                              f"resume={run_dir}, or train in a new folder")

        self.envs = make_vector_env(cfg.env, cfg.seed)
        obs, _ = self.envs.reset(seed=[cfg.seed + TRAIN_SEED_OFFSET + i for i in range(cfg.env.num_envs)])
        obs_space, self.n_actions = self.envs.single_observation_space, int(self.envs.single_action_space.n)
        q_network = build_q_network(cfg.network, obs_space.shape, obs_space.dtype, self.n_actions)
        self.device = device_for(cfg.device, q_network)
        torch.set_num_threads(torch_threads(cfg.torch_threads, self.device, q_network))
        self.agent = DQNAgent(q_network, cfg.optimizer, cfg.target, cfg.gamma, cfg.loss, cfg.double_q, self.device,
                              cfg.optimizer.max_grad_norm, cfg.optimizer.max_grad_value, compile_learner=cfg.compile,
                              cuda_graph=cfg.cuda_graph)
        replay_args = (cfg.buffer, cfg.gamma, obs_space.shape, obs_space.dtype, cfg.seed, self.device,
                       cfg.env.frame_stack, cfg.env.num_envs)
        check_replay_fits_in_memory(*replay_args)
        self.replay = build_replay(*replay_args)
        self.epsilon_at = make_schedule(cfg.exploration, cfg.budget)
        self.state, self.updates = TrainingState.start(obs), UpdateLog()
        if resumed is not None:
            self.load_state_dict(resumed.state, resumed.replay)
            log.info(f"resumed from {resumed.path} at step {self.state.step:,}"
                     + ("" if resumed.replay is not None else " (no saved replay: the buffer starts empty)"))
        self.checkpoint_interval = cfg.checkpoint.interval or cfg.eval.interval or cfg.total_steps
        tracker = build_tracker(cfg.tracker, run_dir, run_name(cfg.env.id, cfg.seed, overrides), sweep,
                                flatten(self.config_dict))
        self.metrics = Metrics(run_dir, self.checkpoint_dir, cfg.budget, cfg.budget_unit, cfg.log.progress,
                               cfg.log.console_interval_s, self.state.counts, resumed is not None, tracker)
        self.metrics.writer.config_text(OmegaConf.to_yaml(self.config_dict))
        warn_about_settings(cfg)
        log.info(f"{cfg.env.id} x{cfg.env.num_envs} | {sum(p.numel() for p in q_network.parameters()):,} parameters "
                 f"on {self.device} | replay buffer {cfg.buffer.capacity:,} transitions = "
                 f"{self.replay.nbytes / 2**20:,.1f} MiB ({self.replay.bytes_per_transition:,.0f} bytes each)")
        self.eval_seconds, self.solved_at = 0.0, None
        self.startup_s = seconds_since_launch()  # launch -> first env step
        self.loop_started, self.start_step = time.perf_counter(), self.state.step

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> Dict[str, Any]:
        """Everything an exact resume needs, as tensors and plain containers (weights-only loadable)."""
        training = self.state.state_dict()
        losses, mean_qs = self.updates.per_update()
        training["loop"].update(to_tensor_tree({
            "losses": losses, "mean_qs": mean_qs, "envs": capture_env_states(self.envs),
            "n_step": self.replay.pending_state(),
        }))
        return {**self.agent.state_dict(), **training,
                "rng": {**rng_state(self.rng), "replay": self.replay.rng.bit_generator.state},
                "config": self.config_dict}

    def load_state_dict(self, state: Dict[str, Any], replay: Optional[Dict[str, np.ndarray]]) -> None:
        self.agent.load_state_dict(state)
        restore_rng_state(state["rng"], self.rng)
        self.replay.rng.bit_generator.state = state["rng"]["replay"]
        if replay is not None:
            self.replay.load_state(replay)
        self.state = TrainingState.from_state_dict(state)
        loop = to_numpy_tree(state["loop"])
        self.updates = UpdateLog(loop["losses"], loop["mean_qs"])
        self.replay.load_pending_state(loop["n_step"])
        inexact = restore_env_states(self.envs, loop["envs"])
        if inexact:  # native simulator state (Box2D, ALE) and async workers' state cannot be copied
            seeds = [self.cfg.seed + TRAIN_SEED_OFFSET + self.state.step + i for i in inexact]
            for i, obs in zip(inexact, restart_episodes(self.envs, inexact, seeds)):
                self.state.restart_episode(i, obs)
            log.warning(f"env(s) {', '.join(map(str, inexact))}: simulator state not restorable; "
                        "they start new episodes on resume")

    def save_checkpoint(self, path: Path) -> Path:
        if not torch.isfinite(self.agent.online_weights.data).all():
            raise TrainingDiverged(f"the weights hold NaN or inf at step {self.state.step}; nothing was saved "
                                   f"({kept_checkpoint(self.checkpoint_dir)})")
        save_checkpoint(path, self.state_dict())
        return path

    def save_periodic_checkpoint(self) -> None:
        step = self.state.step
        if self.cfg.checkpoint.save_replay:
            save_replay(replay_path(self.checkpoint_dir, step), self.replay.state())
        link_atomically(self.save_checkpoint(self.checkpoint_dir / f"step_{step:012d}.pt"),
                        self.checkpoint_dir / "last.pt")
        prune_periodic(self.checkpoint_dir, keep=self.cfg.checkpoint.keep)

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate_and_keep_best(self) -> EvalResult:
        started = time.perf_counter()
        result = self.evaluate(self.cfg.eval.episodes)
        new_best = self.state.is_new_best(result.mean, result.std)
        self.metrics.evaluation(self.state.step, result, new_best)
        if new_best:
            self.save_checkpoint(self.checkpoint_dir / "best.pt")
        self.eval_seconds += time.perf_counter() - started
        return result

    def evaluate(self, episodes: int) -> EvalResult:
        """Greedy episodes on the periodic-evaluation seeds (never the final evaluation's)."""
        return evaluate(greedy_policy(self.agent.eval_q, self.device), self.cfg.env, episodes,
                        seed=self.cfg.seed + EVAL_SEED_OFFSET)

    def solved(self, result: EvalResult) -> bool:
        """eval.stop_when_solved: whether this periodic evaluation reached env.solve_threshold and a
        second one, over eval.final_episodes episodes, confirms it (a few lucky episodes do not)."""
        threshold = self.cfg.env.solve_threshold
        if not self.cfg.eval.stop_when_solved or threshold is None or result.mean < threshold:
            return False
        started = time.perf_counter()
        confirmed = self.evaluate(max(self.cfg.eval.final_episodes, self.cfg.eval.episodes))
        self.eval_seconds += time.perf_counter() - started
        if confirmed.mean < threshold:
            log.info(f"not solved yet: {confirmed.mean:.1f} over {len(confirmed.returns)} episodes is below "
                     f"env.solve_threshold ({threshold:g})")
            return False
        self.solved_at = self.state.step
        log.info(f"solved: {confirmed.mean:.1f} over {len(confirmed.returns)} episodes >= env.solve_threshold "
                 f"({threshold:g}) at step {self.state.step:,}; training stops here (eval.stop_when_solved=false "
                 "trains the whole budget)")
        return True

    def final_evaluation(self, checkpoint: str, stop: Callable[[], bool]) -> EvalResult:
        self.agent.online.load_state_dict(load_checkpoint(self.checkpoint_dir / f"{checkpoint}.pt")["online"])
        return evaluate(greedy_policy(self.agent.eval_q, self.device), self.cfg.env, self.cfg.eval.final_episodes,
                        seed=self.cfg.seed + FINAL_EVAL_SEED_OFFSET, stop=stop,
                        on_episode=EvaluationProgress(f"final evaluation of {checkpoint}.pt"))

    def finish(self, stop: Callable[[], bool]) -> Dict[str, Any]:
        """Evaluate best.pt and last.pt; write the hparams entry and summary.json. Stopped early,
        summary.json holds what was evaluated, marked partial, and nothing goes to TensorBoard."""
        train_seconds = time.perf_counter() - self.loop_started
        final_started = time.perf_counter()
        final = {"best": self.final_evaluation("best", stop)}
        # When the best evaluation was the final one, best.pt holds last.pt's weights: same seeds, same scores.
        final_weights_are_best = self.state.best_eval["step"] == self.state.step
        if final_weights_are_best:
            final["last"] = final["best"]
        elif final["best"].complete:
            final["last"] = self.final_evaluation("last", stop)
        else:  # stopped before last.pt's turn
            final["last"] = EvalResult(np.zeros(0), np.zeros(0, dtype=np.int64), complete=False)
        complete = final["best"].complete and final["last"].complete
        timings = {"startup_s": self.startup_s, "wall_time_s": time.perf_counter() - self.started,
                   "train_time_s": train_seconds, "periodic_eval_time_s": self.eval_seconds,
                   "final_eval_time_s": time.perf_counter() - final_started}
        result = summary(self.cfg.env.id, self.cfg.seed, self.state, self.cfg.eval.episodes, final,
                         self.cfg.env.solve_threshold, timings, self.state.step - self.start_step,
                         (self.cfg.budget, self.cfg.budget_unit))
        result["stopped_when_solved"] = self.solved_at  # the step, or None: trained the whole budget
        if complete:
            self.metrics.final(hparams(flatten(self.config_dict), self.overrides), final, self.state.step)
        else:
            result["partial"] = True
            result["solved"] = None
        atomic_write_json(self.run_dir / "summary.json", result)
        return result
