"""DQN (Mnih et al., 2015) and its extensions: the whole algorithm in one loop, `run_loop`.

Each line of the loop calls one named part: the agent acts (agent.py) and learns (the update is
learners/update.py, on one screen), the replay stores and samples (replay/), the target network
follows (target.py). Evaluation, checkpoints, metrics and the run dir are the shared parts of
run/, which a second algorithm's loop uses the same way.
"""

from __future__ import annotations

import logging
import platform
import sys
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch
from torch import nn

from dqn_cli.agent import DQNAgent
from dqn_cli.checkpoint import to_numpy_tree, to_tensor_tree
from dqn_cli.config import TrainConfig
from dqn_cli.envs import game_over, real_next_obs, shape_rewards
from dqn_cli.errors import TrainingInterrupted
from dqn_cli.exploration import make_schedule
from dqn_cli.learners import AutogradLearner, Learner
from dqn_cli.metrics import UpdateLog
from dqn_cli.replay import BatchPrefetcher, build_replay, check_replay_fits_in_memory
from dqn_cli.run.parts import TrainingRun

log = logging.getLogger("dqn_cli")


def run_loop(run: TrainingRun, should_stop: Callable[[int], bool]) -> None:
    """DQN: act, step, store, learn, update the target; then log, evaluate and checkpoint."""
    cfg, state, dqn = run.cfg, run.state, run.algorithm
    agent, replay = dqn.agent, dqn.replay
    while state.count(cfg.budget_unit) < cfg.budget:
        # act: uniformly random until learning starts, then epsilon-greedy (epsilon's clock: exploration.unit)
        epsilon = dqn.epsilon_at(state.count(cfg.exploration.unit))
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
                batch = dqn.sample(cfg.batch_size)  # the replay's; with prefetch=true, a worker's with its targets
                result = agent.learn(batch)
                replay.update_priorities(batch, result)
                dqn.updates.append(result)
                state.updates += 1
            target_due = state.passed(before, cfg.target.interval, cfg.target.interval_unit)
            if target_due:  # several envs can pass several intervals in one step
                agent.update_target(target_due)

        # log, evaluate, checkpoint (every so many env steps)
        if state.passed(before, cfg.log.train_interval):
            run.metrics.train_point(state.step, epsilon, dqn.updates)
        if cfg.eval.interval and state.passed(before, cfg.eval.interval):
            if run.evaluator.confirms_solved(run.evaluator.evaluate_and_keep_best()):
                break  # eval.stop_when_solved: these weights are last.pt
        checkpoint_due = state.passed(before, run.checkpoints.interval)
        if checkpoint_due:
            run.checkpoints.save_periodic()
        run.metrics.progress.update(state.count(cfg.budget_unit), state.recent, epsilon)
        if should_stop(state.step):
            if not checkpoint_due:
                run.checkpoints.save_periodic()
            raise TrainingInterrupted(state.step, run.run_dir)

    if state.updates == 0 and cfg.total_episodes is not None:  # a step budget was warned about at the start
        log.warning(f"the run ended at step {state.step:,}, before learning_starts ({cfg.learning_starts:,}): no "
                    "gradient step happened, so best.pt and last.pt are the untrained network; raise the budget or "
                    "lower learning_starts")
    run.evaluator.evaluate_at_end()
    run.checkpoints.save_periodic()  # last.pt: the final weights


class DQN:
    """DQN's own parts: the agent (online and target networks, optimizer, learner), the replay (its
    batches drawn ahead by a worker process with prefetch=true), the epsilon schedule and the updates
    not yet logged. The run packs and scores them through the
    `Algorithm` interface of run/parts.py."""

    def __init__(self, q_network: nn.Module, cfg: TrainConfig, obs_space, device: torch.device, cores: int = 1):
        """`cores`: those this run may use (prefetch=true needs two)."""
        self.agent = DQNAgent(q_network, cfg, device)
        check_replay_fits_in_memory(cfg, obs_space, device)
        self.replay = build_replay(cfg, obs_space, device)
        self.prefetcher = None
        if cfg.prefetch:
            why_not = prefetch_unavailable(cfg, device, cores, self.agent.learner)
            if why_not is None:
                self.prefetcher = BatchPrefetcher(self.replay, self.agent.learner.prepare,
                                                  self.agent.target_weights.data, lambda: self.agent.target_syncs)
            else:
                log.warning(f"prefetch=true is off for this run: {why_not}")
        self.sample = self.replay.sample if self.prefetcher is None else self.prefetcher.sample
        self.epsilon_at = make_schedule(cfg.exploration, cfg.budget)
        self.updates = UpdateLog()
        self.network, self.eval_q = self.agent.online, self.agent.eval_q
        self.capacity = cfg.buffer.capacity

    def weights_are_finite(self) -> bool:
        return bool(torch.isfinite(self.agent.online_weights.data).all())

    def state_dict(self) -> Dict[str, Any]:
        losses, mean_qs = self.updates.per_update()
        return {**self.agent.state_dict(),
                "loop": to_tensor_tree({"losses": losses, "mean_qs": mean_qs, "n_step": self.replay.pending_state()}),
                "rng": {"replay": self.replay.rng.bit_generator.state if self.prefetcher is None
                        else self.prefetcher.rng_state()}}

    def load_state_dict(self, state: Dict[str, Any], replay_arrays: Optional[Dict[str, np.ndarray]]) -> None:
        self.agent.load_state_dict(state)
        self.replay.rng.bit_generator.state = state["rng"]["replay"]
        if self.prefetcher is not None:
            self.prefetcher.forget_pending()
        if replay_arrays is not None:
            self.replay.load_state(replay_arrays)
        loop = to_numpy_tree(state["loop"])
        self.updates = UpdateLog(loop["losses"], loop["mean_qs"])
        self.replay.load_pending_state(loop["n_step"])

    def replay_arrays(self) -> Dict[str, np.ndarray]:
        return self.replay.state()

    def describe(self) -> str:
        return (f"replay buffer {self.capacity:,} transitions = {self.replay.nbytes / 2**20:,.1f} MiB "
                f"({self.replay.bytes_per_transition:,.0f} bytes each)"
                + ("" if self.prefetcher is None else "; batches prefetched by a second process"))

    def close(self) -> None:
        prefetcher = self.prefetcher
        if prefetcher is not None and (prefetcher.process is not None or prefetcher.failed):
            prefetcher.close()
            log.info(f"prefetch=true: {prefetcher.used:,} batches came from the worker process, {prefetcher.redrawn:,} "
                     "were drawn again here (a target sync or the newest transition among them)")


def prefetch_unavailable(cfg: TrainConfig, device: torch.device, cores: int, learner: Learner) -> Optional[str]:
    """Why prefetch=true cannot work for this run, or None. The worker prepares the batch of the next
    step's update from the ring as it will be then: one transition more, the target network as it is."""
    needs = {"buffer=uniform": cfg.buffer.name == "uniform", "buffer.n_step=1": cfg.buffer.n_step == 1,
             "env.num_envs=1": cfg.env.num_envs == 1, "env.frame_stack=1": cfg.env.frame_stack == 1,
             "train_freq=1 (steps)": cfg.train_freq == 1 and cfg.train_freq_unit == "step",
             "gradient_steps=1": cfg.gradient_steps == 1, "double_q=false": not cfg.double_q,
             "target=hard": cfg.target.name == "hard", "a CPU run": device.type == "cpu",
             # autograd's compiled modules would compile again in the forked worker
             "compile=false or a fast learner": not (cfg.compile and isinstance(learner, AutogradLearner)),
             "Linux on x86-64": sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64"),
             f"2 cores for this run (it may use {cores})": cores >= 2,
             # a forked process must not inherit a running OpenMP pool (libgomp is not fork-safe)
             f"torch_threads=1 (the worker takes the other core; now {torch.get_num_threads()})":
                 torch.get_num_threads() == 1}
    missing = [need for need, met in needs.items() if not met]
    return None if not missing else "it needs " + ", ".join(missing)
