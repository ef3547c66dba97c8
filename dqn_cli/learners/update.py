"""The DQN update on one screen: the TD target and the loss, written with autograd.

    target  = r + discount * (1 - terminated) * Q_target(s', a')      (no gradient through it)
    a'      = argmax_a Q_target(s', a), or argmax_a Q_online(s', a) with double_q (Double DQN)
    discount = gamma, or gamma^k for an n-step transition that summed k rewards (batch.discounts)
    loss    = mean over the batch of  weight * huber(Q_online(s, a) - target)   (or squared error;
              weight: prioritized replay's importance-sampling weight, else 1)

Only termination stops bootstrapping: a transition cut by a time limit (truncation) is stored with
terminated=0 and bootstraps. `dqn_loss` is this update as written; AutogradLearner backpropagates
through it. The fast learners (fast_mlp.py, fast_cnn.py) take the same `td_targets` and compute the
gradient of the same `td_loss` by hand; the tests hold them to the weights this file's autograd
gives. Every learner's logged TD loss is `td_loss` of what it saw (LearnResult.loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

from dqn_cli.replay import Batch

QFunction = Callable[[torch.Tensor], torch.Tensor]  # observations (B, ...) -> Q-values (B, n_actions)

# config.choices.LOSS_NAMES -> each sample's loss (Huber is smooth L1 with delta 1)
LOSSES = {"huber": F.smooth_l1_loss, "mse": F.mse_loss}


@dataclass(frozen=True)
class UpdateSettings:
    """What the update needs from the run's config (TrainConfig's keys of the same names)."""
    gamma: float = 0.99
    loss: str = "huber"
    double_q: bool = False
    max_grad_norm: Optional[float] = None  # optimizer.max_grad_norm
    max_grad_value: Optional[float] = None  # optimizer.max_grad_value

    @classmethod
    def of(cls, cfg) -> "UpdateSettings":
        """From a TrainConfig."""
        return cls(cfg.gamma, str(cfg.loss), cfg.double_q, cfg.optimizer.max_grad_norm, cfg.optimizer.max_grad_value)


@torch.no_grad()
def td_targets(batch: Batch, online_q: QFunction, target_q: QFunction, settings: UpdateSettings) -> torch.Tensor:
    """r + discount * (1 - terminated) * Q_target(s', a'), per sample."""
    next_q_target = target_q(batch.next_obs)
    if settings.double_q:  # the online net picks a', the target net values it
        next_actions = online_q(batch.next_obs).argmax(dim=1, keepdim=True)
        next_values = next_q_target.gather(1, next_actions).squeeze(1)
    else:
        next_values = next_q_target.amax(dim=1)
    discount = settings.gamma if batch.discounts is None else batch.discounts  # n-step: gamma^k per row
    return batch.rewards + discount * (1.0 - batch.terminated) * next_values


def td_loss(q_taken: torch.Tensor, targets: torch.Tensor, kind: str,
            weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Each sample's loss, weighted (any shape: the metrics reduce many updates at once)."""
    per_sample = LOSSES[kind](q_taken, targets, reduction="none")
    return per_sample if weights is None else weights * per_sample


def dqn_loss(batch: Batch, online_q: QFunction, target_q: QFunction,
             settings: UpdateSettings) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, Q of the actions taken, TD targets): the loss to backpropagate, and what it saw."""
    targets = td_targets(batch, online_q, target_q, settings)
    q_taken = online_q(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
    return td_loss(q_taken, targets, settings.loss, batch.weights).mean(), q_taken, targets


class LearnResult(NamedTuple):
    """What one update saw, detached. Its loss is computed only when asked for: the metrics ask
    once per TensorBoard point, for many updates at once (metrics.UpdateLog)."""
    q_taken: torch.Tensor  # (B,) Q of the actions taken, before the step
    targets: torch.Tensor  # (B,) TD targets
    weights: Optional[torch.Tensor]  # (B,) importance-sampling weights, or None
    loss_kind: str

    @property
    def loss(self) -> torch.Tensor:
        return td_loss(self.q_taken, self.targets, self.loss_kind, self.weights).mean()

    @property
    def td_errors(self) -> torch.Tensor:
        """Each sample's |TD error|: prioritized replay's new priority."""
        return (self.q_taken - self.targets).abs()
