"""What every learner shares: the TD target, gradient clipping, and what an update returns."""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import torch
from torch import nn

from dqn_cli.learners.adam import Optimizer
from dqn_cli.learners.flat import FlatParameters
from dqn_cli.losses import td_loss, td_targets
from dqn_cli.replay import Batch

QFunction = Callable[[torch.Tensor], torch.Tensor]  # observations (B, ...) -> Q-values (B, n_actions)


class LearnResult(NamedTuple):
    """What one update saw, detached. Its loss and statistics are computed only when asked for:
    the loop asks once per TensorBoard point, for many updates at once (metrics.UpdateLog)."""
    q_taken: torch.Tensor  # (B,) Q of the actions taken, before the step
    targets: torch.Tensor  # (B,) TD targets
    weights: Optional[torch.Tensor]  # (B,) importance-sampling weights, or None
    loss_kind: str

    @property
    def loss(self) -> torch.Tensor:
        return td_loss(self.q_taken, self.targets, self.loss_kind, self.weights)

    @property
    def td_errors(self) -> torch.Tensor:
        """Each sample's |TD error|: prioritized replay's new priority."""
        return (self.q_taken - self.targets).abs()


class Learner:
    """One gradient step on the TD loss of a batch, on `weights` (the online network's parameters,
    flat) through `optimizer`. Subclasses say how the gradient is computed."""

    def __init__(self, online_q: QFunction, target_q: QFunction, weights: FlatParameters,
                 optimizer: Optimizer, gamma: float, loss: str, double_q: bool,
                 max_grad_norm: Optional[float] = None, max_grad_value: Optional[float] = None):
        self.online_q, self.target_q = online_q, target_q
        self.weights, self.optimizer = weights, optimizer
        self.gamma, self.loss, self.double_q = gamma, loss, double_q
        self.max_grad_norm, self.max_grad_value = max_grad_norm, max_grad_value

    @torch.no_grad()
    def td_targets(self, batch: Batch) -> torch.Tensor:
        next_q_target = self.target_q(batch.next_obs)
        next_q_online = self.online_q(batch.next_obs) if self.double_q else None
        discount = self.gamma if batch.discounts is None else batch.discounts  # n-step: gamma^k per row
        return td_targets(batch.rewards, batch.terminated, discount, next_q_target, next_q_online)

    def clip_gradients(self) -> None:
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.weights.param, self.max_grad_norm)
        if self.max_grad_value is not None:
            self.weights.grad.clamp_(-self.max_grad_value, self.max_grad_value)

    def learn(self, batch: Batch) -> LearnResult:
        raise TypeError(f"{type(self).__name__} does not say how it learns")
