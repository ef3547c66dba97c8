"""What every learner shares: its parts, the TD target of update.py, and gradient clipping."""

from __future__ import annotations

from typing import Optional

import torch

from dqn_cli.learners.adam import Optimizer
from dqn_cli.learners.flat import FlatParameters
from dqn_cli.learners.update import LearnResult, QFunction, UpdateSettings, td_targets
from dqn_cli.replay import Batch


def clip_grad_norm_(grad: torch.Tensor, max_norm: float) -> None:
    """nn.utils.clip_grad_norm_ for one flat gradient, its kernels in its order (the same numbers),
    without its grouping of tensors by device and type, half of its time."""
    norm = torch._foreach_norm([grad], 2.0)[0]
    total = torch.linalg.vector_norm(norm.unsqueeze(0), 2.0)  # torch's norm of the stacked norms
    grad.mul_(torch.clamp(max_norm / (total + 1e-6), max=1.0))


class Learner:
    """One gradient step on the TD loss of a batch (learners/update.py), on `weights` (the online
    network's parameters, flat) through `optimizer`. Subclasses say how the gradient is computed."""

    def __init__(self, online_q: QFunction, target_q: QFunction, weights: FlatParameters,
                 optimizer: Optimizer, settings: UpdateSettings):
        self.online_q, self.target_q = online_q, target_q
        self.act_q = online_q  # acting's forward pass: the same Q-values, a learner's fastest for one observation
        self.weights, self.optimizer, self.settings = weights, optimizer, settings

    def td_targets(self, batch: Batch) -> torch.Tensor:
        return td_targets(batch, self.online_q, self.target_q, self.settings)

    def clip_gradients(self) -> None:
        if self.settings.max_grad_norm is not None:
            clip_grad_norm_(self.weights.grad, self.settings.max_grad_norm)
        if self.settings.max_grad_value is not None:
            self.weights.grad.clamp_(-self.settings.max_grad_value, self.settings.max_grad_value)

    def prepare(self, batch: Batch) -> Batch:
        """The batch with what its update needs that the online weights do not change: its TD targets
        (prefetch=true's worker process calls this while the update before runs)."""
        return batch._replace(targets=self.td_targets(batch))

    def learn(self, batch: Batch) -> LearnResult:
        """One gradient step toward the batch's TD targets (DQN), computed here unless the batch brings them."""
        targets = self.td_targets(batch) if batch.targets is None else batch.targets
        return self.fit(batch.obs, batch.actions, targets, batch.weights)

    def fit(self, obs: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor,
            weights: Optional[torch.Tensor] = None) -> LearnResult:
        """One gradient step on td_loss(Q(obs, actions), targets): the part of the update after the
        targets, which an algorithm with targets of its own (PQN's lambda-returns) calls directly."""
        raise TypeError(f"{type(self).__name__} does not say how it learns")
