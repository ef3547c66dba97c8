"""TD targets and losses as pure functions."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

# loss name -> the per-sample loss (Huber is smooth L1 with delta 1)
LOSSES = {"huber": F.smooth_l1_loss, "mse": F.mse_loss}


def td_targets(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float | torch.Tensor,
    next_q_target: torch.Tensor,
    next_q_online: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """r + gamma * (1 - terminated) * Q_target(s', a').

    Vanilla DQN takes a' = argmax Q_target(s', .); Double DQN (pass `next_q_online`) lets the
    online net pick a' and the target net value it. Only termination stops bootstrapping: a
    transition cut by a time limit (truncation) is stored with terminated=0 and bootstraps.
    """
    if next_q_online is None:
        next_values = next_q_target.amax(dim=1)
    else:
        next_actions = next_q_online.argmax(dim=1, keepdim=True)
        next_values = next_q_target.gather(1, next_actions).squeeze(1)
    return rewards + gamma * (1.0 - terminated) * next_values


def td_loss(q_taken: torch.Tensor, targets: torch.Tensor, kind: str,
            weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Huber (smooth L1, delta 1) or squared TD error, averaged over the batch; with `weights`
    (prioritized replay's importance-sampling weights) each sample's loss is scaled first."""
    return td_loss_per_sample(q_taken, targets, kind, weights).mean()


def td_loss_per_sample(q_taken: torch.Tensor, targets: torch.Tensor, kind: str,
                       weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Each sample's (weighted) TD loss, of any shape (the loop reduces many updates at once)."""
    per_sample = LOSSES[kind](q_taken, targets, reduction="none")
    return per_sample if weights is None else weights * per_sample
