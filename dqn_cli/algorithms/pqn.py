"""PQN (Gallici et al., 2025, "Simplifying Deep Temporal Difference Learning"): DQN without a replay
buffer or a target network. Many envs step side by side for a short rollout; every transition's
target is its lambda-return, bootstrapped from the network that acted; then a few epochs of
shuffled minibatches fit the network to them. LayerNorm in the network (network.norm=layer) is what
keeps this stable without a target network.

The fit is the same TD step DQN takes (learners/update.py's td_loss through a learner), given these
targets instead of one-step ones. Evaluation, checkpoints, metrics and the run dir are run/'s shared
parts, as for DQN.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, NamedTuple, Optional

import numpy as np
import torch
from torch import nn

from dqn_cli.checkpoint import to_numpy_tree, to_tensor_tree
from dqn_cli.config import TrainConfig
from dqn_cli.envs import game_over, real_next_obs, shape_rewards
from dqn_cli.errors import TrainingInterrupted
from dqn_cli.exploration import epsilon_greedy, make_schedule
from dqn_cli.learners import (FlatParameters, UpdateSettings, build_learner, build_optimizer, load_optimizer_state,
                              set_learning_rate)
from dqn_cli.metrics import UpdateLog
from dqn_cli.run.parts import TrainingRun


def lambda_returns(rewards: torch.Tensor, terminated: torch.Tensor, ended: torch.Tensor,
                   next_values: torch.Tensor, gamma: float, td_lambda: float) -> torch.Tensor:
    """Each transition's lambda-return, over a rollout of shape (steps, envs).

        G_t = r_t + gamma * (1 - terminated_t) * [(1 - lambda) * V_{t+1} + lambda * G_{t+1}]

    with V_{t+1} = next_values[t] = max_a Q(s_{t+1}, a) of the state the env reached. Where the
    episode ended at t (terminated or truncated), or at the rollout's last step, the return does not
    continue into the next step: G_t = r_t + gamma * (1 - terminated_t) * V_{t+1}, so a truncated
    transition bootstraps from its real last observation and a terminated one not at all.
    """
    returns = torch.empty_like(rewards)
    following = next_values[-1]
    for t in reversed(range(len(rewards))):
        continued = next_values[t] if t == len(rewards) - 1 else torch.where(
            ended[t], next_values[t], (1 - td_lambda) * next_values[t] + td_lambda * following)
        following = returns[t] = rewards[t] + gamma * (1.0 - terminated[t]) * continued
    return returns


class Rollout(NamedTuple):
    obs: torch.Tensor  # (steps, envs, *obs_shape)
    actions: torch.Tensor  # (steps, envs) int64
    targets: torch.Tensor  # (steps, envs) lambda-returns


class PQN:
    """PQN's own parts: one Q-network and its optimizer and learner, the epsilon schedule, the
    learning-rate decay and the updates not yet logged. No target network, no replay."""

    def __init__(self, q_network: nn.Module, cfg: TrainConfig, obs_space, device: torch.device, cores: int = 1):
        """`cores`: those this run may use (PQN's envs and minibatches take torch's threads as set)."""
        self.cfg, self.settings = cfg.algorithm, UpdateSettings.of(cfg)
        self.network = q_network.to(device)
        self.weights = FlatParameters(self.network)
        self.optimizer = build_optimizer(cfg.optimizer, self.weights.param)
        self.learner = build_learner(self.network, self.network, self.weights, self.optimizer, self.settings,
                                     compile_update=cfg.compile)
        # Acting and bootstrapping score the module itself: for a batch of envs its forward is as fast
        # as a fast learner's, and evaluation then sees the same Q-values training did.
        self.act_q = self.eval_q = self.network
        self.epsilon_at = make_schedule(cfg.exploration, cfg.budget)
        self.updates = UpdateLog()
        self.device, self.lr = device, cfg.optimizer.lr
        rollouts = -(-cfg.total_steps // (cfg.env.num_envs * self.cfg.rollout_steps))
        self.total_fits = max(rollouts * self.cfg.epochs * self.cfg.minibatches, 1)

    @torch.no_grad()
    def q_values(self, obs: np.ndarray) -> torch.Tensor:
        return self.act_q(torch.from_numpy(np.asarray(obs)).to(self.device).float())

    def fit_rollout(self, rollout: Rollout, rng: np.random.Generator, fits_so_far: int):
        """Epochs of shuffled minibatches toward the rollout's lambda-returns; yields each LearnResult."""
        columns = (rollout.obs.flatten(0, 1), rollout.actions.flatten(), rollout.targets.flatten())
        size = len(columns[1]) // self.cfg.minibatches
        for _ in range(self.cfg.epochs):
            order = torch.from_numpy(rng.permutation(len(columns[1]))).to(self.device)
            obs, actions, targets = (column.index_select(0, order) for column in columns)  # shuffled once an epoch
            for start in range(0, len(actions), size):
                if self.cfg.lr_decay:  # linearly to 0 over the run's fits
                    set_learning_rate(self.optimizer, self.lr * (1.0 - fits_so_far / self.total_fits))
                fits_so_far += 1
                rows = slice(start, start + size)
                yield self.learner.fit(obs[rows], actions[rows], targets[rows])

    def weights_are_finite(self) -> bool:
        return bool(torch.isfinite(self.weights.data).all())

    def state_dict(self) -> Dict[str, Any]:
        losses, mean_qs = self.updates.per_update()
        return {"online": self.network.state_dict(), "optimizer": self.optimizer.state_dict(),
                "loop": to_tensor_tree({"losses": losses, "mean_qs": mean_qs})}

    def load_state_dict(self, state: Dict[str, Any], replay_arrays: Optional[Dict[str, np.ndarray]]) -> None:
        self.network.load_state_dict(state["online"])
        load_optimizer_state(self.optimizer, state["optimizer"])
        loop = to_numpy_tree(state["loop"])
        self.updates = UpdateLog(loop["losses"], loop["mean_qs"])

    def replay_arrays(self) -> None:
        return None  # no replay: a checkpoint is all there is

    def close(self) -> None:
        """Nothing of its own runs beside the loop."""

    def describe(self) -> str:
        cfg = self.cfg
        return (f"PQN: rollouts of {cfg.rollout_steps} steps, lambda {cfg.td_lambda}, {cfg.epochs} epochs of "
                f"{cfg.minibatches} minibatches")


def collect_rollout(run: TrainingRun, pqn: PQN, epsilon: float) -> Rollout:
    """env.num_envs x rollout_steps transitions, acting epsilon-greedily on the Q-values that also
    bootstrap the lambda-returns (no target network: the acting network is the bootstrap)."""
    cfg, state = run.cfg, run.state
    steps, envs = pqn.cfg.rollout_steps, cfg.env.num_envs
    observations, actions = [], []
    rewards, terminated, ended, next_values = (torch.zeros(steps, envs, device=pqn.device) for _ in range(4))
    q_values = pqn.q_values(state.obs)
    for t in range(steps):
        observations.append(torch.from_numpy(state.obs).to(pqn.device).float())  # the state's own copy
        chosen = epsilon_greedy(lambda: q_values.argmax(dim=1).cpu().numpy(), envs, epsilon, run.rng, run.n_actions)
        next_obs, reward, terminal, truncated, info = run.envs.step(chosen)
        done = terminal | truncated
        actions.append(torch.from_numpy(np.asarray(chosen, dtype=np.int64)).to(pqn.device))
        rewards[t] = torch.from_numpy(shape_rewards(reward, cfg.env.reward_scale, cfg.env.reward_clip))
        terminated[t], ended[t] = torch.from_numpy(terminal.astype(np.float32)), torch.from_numpy(done)
        run.metrics.episodes_ended_together(state.record_step(next_obs, reward, game_over(done, info)))
        state.advance(envs)
        if done.any():  # also the value of where each ended episode really got to (not the next one's start)
            q_values = pqn.q_values(np.concatenate([state.obs, real_next_obs(next_obs, done, info)[done]]))
            next_values[t] = q_values[:envs].amax(dim=1)
            next_values[t, torch.from_numpy(np.flatnonzero(done)).to(pqn.device)] = q_values[envs:].amax(dim=1)
            q_values = q_values[:envs]
        else:
            q_values = pqn.q_values(state.obs)
            next_values[t] = q_values.amax(dim=1)
    targets = lambda_returns(rewards, terminated, ended.bool(), next_values, cfg.gamma, pqn.cfg.td_lambda)
    return Rollout(torch.stack(observations), torch.stack(actions), targets)


def run_loop(run: TrainingRun, should_stop: Callable[[int], bool]) -> None:
    """PQN: collect a rollout, compute its lambda-returns, fit them in shuffled minibatches; then log,
    evaluate and checkpoint, as DQN's loop does, at rollout boundaries."""
    cfg, state, pqn = run.cfg, run.state, run.algorithm
    while state.step < cfg.total_steps:
        epsilon = pqn.epsilon_at(state.step)  # one epsilon per rollout, as in the paper's code
        before = state.counts
        rollout = collect_rollout(run, pqn, epsilon)
        for result in pqn.fit_rollout(rollout, run.rng, state.updates):
            pqn.updates.append(result)
            state.updates += 1

        if state.passed(before, cfg.log.train_interval):
            run.metrics.train_point(state.step, epsilon, pqn.updates)
        if cfg.eval.interval and state.passed(before, cfg.eval.interval):
            if run.evaluator.confirms_solved(run.evaluator.evaluate_and_keep_best()):
                break
        checkpoint_due = state.passed(before, run.checkpoints.interval)
        if checkpoint_due:
            run.checkpoints.save_periodic()
        run.metrics.progress.update(state.step, state.recent, epsilon)
        if should_stop(state.step):
            if not checkpoint_due:
                run.checkpoints.save_periodic()
            raise TrainingInterrupted(state.step, run.run_dir)

    run.evaluator.evaluate_at_end()
    run.checkpoints.save_periodic()
