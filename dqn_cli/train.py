"""train(cfg, run_dir) -> summary: the whole DQN algorithm in one readable loop."""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from omegaconf import OmegaConf

from dqn_cli import tb
from dqn_cli.agent import DQNAgent, LearnResult
from dqn_cli.buffers import NStepAccumulator, ReplayBuffer, build_buffer
from dqn_cli.checkpoint import (
    atomic_write_json,
    find_resumable,
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
from dqn_cli.console import Progress
from dqn_cli.envs import (
    EVAL_SEED_OFFSET,
    FINAL_EVAL_SEED_OFFSET,
    TRAIN_SEED_OFFSET,
    capture_env_states,
    game_over,
    make_vector_env,
    real_next_obs,
    restore_env_states,
    shape_rewards,
)
from dqn_cli.errors import ConfigError, TrainingDiverged, TrainingInterrupted
from dqn_cli.evaluate import EvalResult, evaluate, greedy_policy
from dqn_cli.exploration import make_schedule
from dqn_cli.losses import td_loss_per_sample
from dqn_cli.networks import NatureCNN, build_q_network

log = logging.getLogger("dqn_cli")


@dataclass
class Counters:
    step: int = 0  # env steps, summed over parallel envs
    episodes: int = 0
    updates: int = 0  # gradient steps
    best_eval: Dict[str, float] = field(default_factory=lambda: {"mean": -float("inf"), "std": 0.0, "step": -1})


class UpdateLog:
    """The updates since the last TensorBoard point, kept as their LearnResults and reduced only
    when their TD loss and mean Q are written: per update, that reduction would cost about 20 us,
    a tenth of a CartPole update. Per-update values read back from a checkpoint come first."""

    def __init__(self, losses: Sequence[float] = (), mean_qs: Sequence[float] = ()):
        self.results: List[LearnResult] = []
        self.restored = (list(losses), list(mean_qs))

    def append(self, result: LearnResult) -> None:
        self.results.append(result)

    def __bool__(self) -> bool:
        return bool(self.results or self.restored[0])

    def per_update(self) -> Tuple[List[float], List[float]]:
        """(TD loss, mean Q) of every update, in order."""
        losses, mean_qs = list(self.restored[0]), list(self.restored[1])
        if self.results:
            stack = lambda name: torch.stack([getattr(r, name) for r in self.results])  # noqa: E731
            q_taken, weights = stack("q_taken"), None if self.results[0].weights is None else stack("weights")
            loss = td_loss_per_sample(q_taken, stack("targets"), self.results[0].loss_kind, weights)
            losses += loss.mean(dim=1).tolist()
            mean_qs += q_taken.mean(dim=1).tolist()
        return losses, mean_qs


@dataclass
class Episodes:
    """What the loop carries between steps besides the counters: checkpointed for exact resume."""
    obs: np.ndarray
    returns: np.ndarray  # running raw return of each env's current episode
    lengths: np.ndarray
    recent: deque = field(default_factory=lambda: deque(maxlen=100))  # last finished episodes' returns
    updates: UpdateLog = field(default_factory=lambda: UpdateLog())  # since the last TensorBoard point
    n_step: Optional[NStepAccumulator] = None  # the starts of n-step transitions still being summed


def _n_step_accumulator(cfg: TrainConfig) -> Optional[NStepAccumulator]:
    return NStepAccumulator(cfg.buffer.n_step, cfg.gamma, cfg.env.num_envs) if cfg.buffer.n_step > 1 else None


def crossings(before: int, after: int, interval: int) -> int:
    """How many multiples of `interval` a counter passed going from `before` to `after`."""
    return after // interval - before // interval


def resolve_device(name: str, gpu_pays_off: bool = True) -> torch.device:
    """device=auto (or auto:N) takes the GPU (N) only for networks that gain from one: measured on
    an H100, the default CartPole MLP trains 3x slower there than on two CPU cores (README, "Speed")."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but no CUDA device is available; use device=auto or device=cpu")
    if name.startswith("auto"):
        name = name.replace("auto", "cuda") if torch.cuda.is_available() and gpu_pays_off else "cpu"
    return torch.device(name)


def job_device(device: str, job_number: int, gpu_count: int) -> str:
    """Spread the jobs of a sweep over the GPUs of one machine: job n gets GPU (n mod count)."""
    if device in ("auto", "cuda") and gpu_count > 1:
        return f"{device}:{job_number % gpu_count}"
    return device


def torch_threads(cfg: TrainConfig, device: torch.device, q_network: torch.nn.Module) -> int:
    """Small MLPs run fastest on one thread (less sync than work); convolutions use the cores."""
    if cfg.torch_threads > 0:
        return cfg.torch_threads
    if device.type == "cuda" or not isinstance(q_network, NatureCNN):
        return 1
    return os.cpu_count() or 1


def process_started_unix() -> float | None:
    """When this process was launched (Linux /proc), so start-up can be reported; None elsewhere."""
    try:
        ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def _checkpoint_state(cfg: TrainConfig, agent: DQNAgent, buffer: ReplayBuffer, counters: Counters,
                      np_rng: np.random.Generator, episodes: Episodes, envs) -> Dict[str, Any]:
    return {
        **agent.state_dict(),
        "counters": {"step": counters.step, "episodes": counters.episodes, "updates": counters.updates},
        "best_eval": dict(counters.best_eval),
        "rng": {**rng_state(np_rng), "replay": buffer.rng.bit_generator.state},
        "loop": to_tensor_tree({
            "obs": episodes.obs, "returns": episodes.returns, "lengths": episodes.lengths,
            "recent": list(episodes.recent), **dict(zip(("losses", "mean_qs"), episodes.updates.per_update())),
            "envs": capture_env_states(envs),
            "n_step": episodes.n_step.state() if episodes.n_step else [],
        }),
        "config": to_dict(cfg),
    }


def _restore(state: Dict[str, Any], agent: DQNAgent, buffer: ReplayBuffer, replay: Optional[dict], envs,
             np_rng: np.random.Generator, cfg: TrainConfig) -> tuple:
    """Put a checkpoint back into freshly built parts; returns (counters, episodes)."""
    agent.load_state_dict(state)
    restore_rng_state(state["rng"], np_rng)
    buffer.rng.bit_generator.state = state["rng"]["replay"]
    if replay is not None:
        buffer.load_state(replay)
    loop = to_numpy_tree(state["loop"])
    counters = Counters(**state["counters"], best_eval=dict(state["best_eval"]))
    episodes = Episodes(obs=loop["obs"], returns=loop["returns"], lengths=loop["lengths"],
                        recent=deque(loop["recent"], maxlen=100),
                        updates=UpdateLog(loop["losses"], loop["mean_qs"]),
                        n_step=_n_step_accumulator(cfg))
    if episodes.n_step is not None:
        episodes.n_step.load_state(loop["n_step"])
    for i in restore_env_states(envs, loop["envs"]):
        # Native simulator state (e.g. Box2D) cannot be copied: that env starts a fresh episode.
        episodes.obs[i], _ = envs.envs[i].reset(seed=cfg.seed + TRAIN_SEED_OFFSET + counters.step + i)
        episodes.returns[i], episodes.lengths[i] = 0.0, 0
        log.warning(f"env {i}: its simulator state is not restorable; it starts a new episode on resume")
    return counters, episodes


def _final_evaluation(agent: DQNAgent, cfg: TrainConfig, path: Path) -> EvalResult:
    agent.online.load_state_dict(load_checkpoint(path)["online"])
    return evaluate(greedy_policy(agent.online, agent.device), cfg.env, cfg.eval.final_episodes,
                    seed=cfg.seed + FINAL_EVAL_SEED_OFFSET)


class StopOnSignal:
    """SIGINT / SIGTERM ask the loop to stop after the current step and checkpoint; a second
    SIGINT aborts at once. Installed only while train() runs, in the main thread."""

    def __init__(self):
        self.signal_name: Optional[str] = None
        self.previous: dict = {}

    def __call__(self, step: int) -> bool:
        return self.signal_name is not None

    def _handle(self, signum, frame) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def train(cfg: TrainConfig, run_dir: Path, resume: bool = False,
          should_stop: Optional[Callable[[int], bool]] = None) -> Dict[str, Any]:
    """Train a DQN as `cfg` says, writing checkpoints, TensorBoard events and summary.json to run_dir.

    resume=True continues from the newest readable periodic checkpoint in run_dir (exactly, for
    envs whose state can be copied). `should_stop(step)` is asked after every step; by default
    SIGINT/SIGTERM make it true, and the loop then checkpoints and raises TrainingInterrupted.
    """
    # Signals are caught from the start, so a SIGTERM during set-up also ends in a clean stop.
    with StopOnSignal() as stop_on_signal:
        return _train(cfg, run_dir, resume, should_stop or stop_on_signal, stop_on_signal)


def _train(cfg: TrainConfig, run_dir: Path, resume: bool, should_stop: Callable[[int], bool],
           stop_on_signal: StopOnSignal) -> Dict[str, Any]:
    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = run_dir / "checkpoints"
    np_rng = seed_everything(cfg.seed)
    resumed = find_resumable(ckpt_dir) if resume else None  # before anything is written
    if resumed is not None:
        check_resume_compatible(resumed.state["config"], cfg)

    envs = make_vector_env(cfg.env, cfg.seed)
    obs, _ = envs.reset(seed=[cfg.seed + TRAIN_SEED_OFFSET + i for i in range(cfg.env.num_envs)])
    obs_space, n_actions = envs.single_observation_space, int(envs.single_action_space.n)
    q_network = build_q_network(cfg.network, obs_space.shape, obs_space.dtype, n_actions)
    device = resolve_device(cfg.device, gpu_pays_off=isinstance(q_network, NatureCNN))
    torch.set_num_threads(torch_threads(cfg, device, q_network))
    agent = DQNAgent(q_network, cfg.optimizer, cfg.target, cfg.gamma, cfg.loss, cfg.double_q, device,
                     compile_learner=cfg.compile)
    buffer = build_buffer(cfg.buffer, obs_space.shape, obs_space.dtype, seed=cfg.seed, device=device,
                          frame_stack=cfg.env.frame_stack, num_envs=cfg.env.num_envs)
    epsilon_at = make_schedule(cfg.exploration, cfg.total_steps)
    counters = Counters()
    episodes = Episodes(obs=obs, returns=np.zeros(cfg.env.num_envs),
                        lengths=np.zeros(cfg.env.num_envs, dtype=np.int64), n_step=_n_step_accumulator(cfg))
    if resumed is not None:
        counters, episodes = _restore(resumed.state, agent, buffer, resumed.replay, envs, np_rng, cfg)
        log.info(f"resumed from {resumed.path} at step {counters.step:,}"
                 + ("" if resumed.replay is not None else " (no saved replay: the buffer starts empty)"))
    # purge_step drops points a killed process logged after this checkpoint, so curves do not double.
    writer = tb.TensorBoardLogger(run_dir, purge_step=counters.step + 1 if resumed is not None else None)
    writer.config_text(OmegaConf.to_yaml(to_dict(cfg)))
    log.info(f"{cfg.env.id} x{cfg.env.num_envs} | {sum(p.numel() for p in q_network.parameters()):,} parameters "
             f"on {device} | replay buffer {cfg.buffer.capacity:,} transitions = {buffer.nbytes / 2**20:,.1f} MiB "
             f"({buffer.bytes_per_transition:,.0f} bytes each)")

    progress = Progress(cfg.total_steps, cfg.log.progress, cfg.log.console_interval_s, initial=counters.step)
    eval_seconds = 0.0
    launched = process_started_unix()
    startup_s = None if launched is None else round(time.time() - launched, 3)  # launch -> first env step
    loop_started = last_log_time = time.perf_counter()
    last_log_step = start_step = counters.step
    checkpoint_interval = cfg.checkpoint.interval or cfg.eval.interval or cfg.total_steps

    def checkpoint(path: Path) -> Path:
        if not torch.isfinite(agent.online_weights.data).all():
            raise TrainingDiverged(f"the weights hold NaN or inf at step {counters.step}; nothing was saved "
                                   f"over the last good checkpoint in {ckpt_dir}")
        save_checkpoint(path, _checkpoint_state(cfg, agent, buffer, counters, np_rng, episodes, envs))
        return path

    def periodic_checkpoint() -> None:
        if cfg.checkpoint.save_replay:
            save_replay(ckpt_dir / f"replay_{counters.step:012d}.npz", buffer.state())
        link_atomically(checkpoint(ckpt_dir / f"step_{counters.step:012d}.pt"), ckpt_dir / "last.pt")
        prune_periodic(ckpt_dir, keep=cfg.checkpoint.keep)

    def periodic_evaluation() -> None:
        nonlocal eval_seconds
        eval_started = time.perf_counter()
        result = evaluate(greedy_policy(agent.online, device), cfg.env, cfg.eval.episodes,
                          seed=cfg.seed + EVAL_SEED_OFFSET)
        writer.scalar(tb.EVAL_MEAN, result.mean, counters.step)
        writer.scalar(tb.EVAL_STD, result.std, counters.step)
        # Ties go to the later weights: they have seen more data at a lower epsilon.
        if result.mean >= counters.best_eval["mean"]:
            counters.best_eval = {"mean": result.mean, "std": result.std, "step": counters.step}
            checkpoint(ckpt_dir / "best.pt")
        eval_seconds += time.perf_counter() - eval_started

    try:
        while counters.step < cfg.total_steps:
            # act
            epsilon = epsilon_at(counters.step)
            if counters.step < cfg.learning_starts:
                actions = np_rng.integers(0, n_actions, size=cfg.env.num_envs)
            else:
                actions = agent.act(episodes.obs, epsilon, np_rng, n_actions)
            next_obs, rewards, terminated, truncated, info = envs.step(actions)
            done = terminated | truncated

            # store: truncation keeps terminated=False, so time-limited transitions still bootstrap
            transition = (episodes.obs, actions, shape_rewards(rewards, cfg.env.reward_scale, cfg.env.reward_clip),
                          real_next_obs(next_obs, done, info), terminated)
            if episodes.n_step is None:
                buffer.add(*transition)
            elif (ready := episodes.n_step.push(*transition, done)) is not None:
                buffer.add(*ready)
            episodes.obs = next_obs

            episodes.returns += rewards
            episodes.lengths += 1
            for i in np.flatnonzero(game_over(done, info)):  # a lost Atari life is not a new episode
                counters.episodes += 1
                episodes.recent.append(float(episodes.returns[i]))
                writer.scalar(tb.EPISODE_RETURN, episodes.returns[i], counters.step + i + 1)
                writer.scalar(tb.EPISODE_LENGTH, episodes.lengths[i], counters.step + i + 1)
                episodes.returns[i], episodes.lengths[i] = 0.0, 0

            before, counters.step = counters.step, counters.step + cfg.env.num_envs

            # learn
            if counters.step >= cfg.learning_starts:
                buffer.anneal(counters.step / cfg.total_steps)  # prioritized replay's beta -> 1
                for _ in range(crossings(before, counters.step, cfg.train_freq) * cfg.gradient_steps):
                    batch = buffer.sample(cfg.batch_size)
                    result = agent.learn(batch)
                    if buffer.keeps_priorities:
                        buffer.update_priorities(batch.indices, result.td_errors)
                    episodes.updates.append(result)
                    counters.updates += 1
                if crossings(before, counters.step, cfg.target.interval):
                    agent.update_target()

            # log, evaluate, checkpoint
            if crossings(before, counters.step, cfg.log.train_interval):
                now = time.perf_counter()
                writer.scalar(tb.EPSILON, epsilon, counters.step)
                writer.scalar(tb.STEPS_PER_SECOND, (counters.step - last_log_step) / (now - last_log_time),
                              counters.step)
                if episodes.updates:
                    # Checked here, not after every update: reading a loss back waits for the GPU.
                    losses, mean_qs = episodes.updates.per_update()
                    loss = sum(losses) / len(losses)
                    if not math.isfinite(loss):
                        raise TrainingDiverged(f"the TD loss became {loss} between steps {last_log_step} and "
                                               f"{counters.step}; the last good checkpoint is kept in {ckpt_dir}")
                    writer.scalar(tb.TD_LOSS, loss, counters.step)
                    writer.scalar(tb.MEAN_Q, sum(mean_qs) / len(mean_qs), counters.step)
                    episodes.updates = UpdateLog()
                last_log_time, last_log_step = now, counters.step
            if cfg.eval.interval and crossings(before, counters.step, cfg.eval.interval):
                periodic_evaluation()
            if crossings(before, counters.step, checkpoint_interval):
                periodic_checkpoint()
            progress.update(counters.step, episodes.recent, epsilon)
            if should_stop(counters.step):
                if not crossings(before, counters.step, checkpoint_interval):
                    periodic_checkpoint()
                raise TrainingInterrupted(counters.step, run_dir, stop_on_signal.signal_name)

        # The end of training always competes for best.pt, and last.pt is always the final weights.
        if not cfg.eval.interval or counters.step % cfg.eval.interval:
            periodic_evaluation()
        periodic_checkpoint()
    finally:
        progress.close(counters.step)
        envs.close()
        writer.flush()
    train_seconds = time.perf_counter() - loop_started

    final_started = time.perf_counter()
    final = {"best": _final_evaluation(agent, cfg, ckpt_dir / "best.pt")}
    # When the best evaluation was the final one, best.pt holds last.pt's weights: same seeds, same scores.
    final_weights_are_best = counters.best_eval["step"] == counters.step
    final["last"] = final["best"] if final_weights_are_best else _final_evaluation(agent, cfg, ckpt_dir / "last.pt")
    final_seconds = time.perf_counter() - final_started

    summary = {
        "env_id": cfg.env.id,
        "seed": cfg.seed,
        "steps": counters.step,
        "episodes": counters.episodes,
        "updates": counters.updates,
        "startup_s": startup_s,
        "wall_time_s": round(time.perf_counter() - started, 3),
        "train_time_s": round(train_seconds, 3),
        "periodic_eval_time_s": round(eval_seconds, 3),
        "final_eval_time_s": round(final_seconds, 3),
        "steps_per_second": round((counters.step - start_step) / train_seconds, 1),
        "best_periodic_eval": {**counters.best_eval, "episodes": cfg.eval.episodes},
        "final_eval": {name: result.as_dict() for name, result in final.items()},
        "solve_threshold": cfg.env.solve_threshold,
        "solved": (cfg.env.solve_threshold is not None
                   and final["best"].mean >= cfg.env.solve_threshold),
    }
    writer.hparams(flatten(to_dict(cfg)), {
        tb.FINAL_BEST_MEAN: final["best"].mean, tb.FINAL_BEST_STD: final["best"].std,
        tb.FINAL_LAST_MEAN: final["last"].mean, tb.FINAL_LAST_STD: final["last"].std,
    }, counters.step)
    writer.close()
    atomic_write_json(run_dir / "summary.json", summary)
    return summary
