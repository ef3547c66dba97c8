"""The plain DQN update through autograd (learners/update.py's `dqn_loss`): the version to read,
and the reference that the fast learners are tested against."""

from __future__ import annotations

from typing import Optional

import torch

from dqn_cli.learners.base import Learner
from dqn_cli.learners.update import LearnResult, dqn_loss, td_loss
from dqn_cli.replay import Batch


class AutogradLearner(Learner):
    """Loss, backward, clip, optimizer step: works for any Q-network."""

    def learn(self, batch: Batch) -> LearnResult:
        loss, q_taken, targets = dqn_loss(batch, self.online_q, self.target_q, self.settings)
        return self._step(loss, q_taken, targets, batch.weights)

    def fit(self, obs: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor,
            weights: Optional[torch.Tensor] = None) -> LearnResult:
        q_taken = self.online_q(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
        return self._step(td_loss(q_taken, targets, self.settings.loss, weights).mean(), q_taken, targets, weights)

    def _step(self, loss: torch.Tensor, q_taken: torch.Tensor, targets: torch.Tensor,
              weights: Optional[torch.Tensor]) -> LearnResult:
        self.weights.zero_grad()
        loss.backward()
        self.clip_gradients()
        self.optimizer.step()
        return LearnResult(q_taken.detach(), targets, weights, self.settings.loss)
