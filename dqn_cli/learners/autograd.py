"""The plain DQN update, through autograd: the version to read, and the reference that the fast
learner is tested against."""

from __future__ import annotations

from dqn_cli.learners.base import Learner, LearnResult
from dqn_cli.losses import td_loss
from dqn_cli.replay import Batch


class AutogradLearner(Learner):
    """Forward, TD target, loss, backward, clip, optimizer step: works for any Q-network."""

    def learn(self, batch: Batch) -> LearnResult:
        targets = self.td_targets(batch)
        q_taken = self.online_q(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
        loss = td_loss(q_taken, targets, self.loss, batch.weights)
        self.weights.zero_grad()
        loss.backward()
        self.clip_gradients()
        self.optimizer.step()
        return LearnResult(q_taken.detach(), targets, batch.weights, self.loss)

