"""One Q-learner: acts epsilon-greedily and learns from replay batches."""

from __future__ import annotations

import copy
from typing import Dict, NamedTuple

import numpy as np
import torch
from torch import nn

from dqn_cli.buffers import Batch
from dqn_cli.config import (
    AdamConfig,
    AdamWConfig,
    OptimizerConfig,
    RMSpropConfig,
    SGDConfig,
)
from dqn_cli.losses import td_loss, td_targets
from dqn_cli.target import update_target


def build_optimizer(cfg: OptimizerConfig, params) -> torch.optim.Optimizer:
    common = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if isinstance(cfg, AdamConfig):
        # The fused kernel updates all parameters in one call: measurably faster per update, CPU and GPU.
        adam = torch.optim.AdamW if isinstance(cfg, AdamWConfig) else torch.optim.Adam
        return adam(params, betas=tuple(cfg.betas), eps=cfg.eps, amsgrad=cfg.amsgrad, fused=True, **common)
    if isinstance(cfg, RMSpropConfig):
        return torch.optim.RMSprop(params, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum,
                                   centered=cfg.centered, **common)
    if isinstance(cfg, SGDConfig):
        return torch.optim.SGD(params, momentum=cfg.momentum, nesterov=cfg.nesterov, **common)
    raise TypeError(f"unknown optimizer config {type(cfg).__name__}")


class LearnResult(NamedTuple):
    loss: torch.Tensor
    mean_q: torch.Tensor
    td_errors: torch.Tensor


class DQNAgent:
    """Online and target Q-networks, their optimizer, and the two things DQN does with them."""

    def __init__(self, q_network: nn.Module, optimizer_cfg: OptimizerConfig, target_cfg, gamma: float,
                 loss: str, double_q: bool, device: torch.device, compile_learner: bool = False):
        self.online = q_network.to(device)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        # The learner's forward passes (fixed batch shape) may be compiled; acting stays eager
        # because its batch of one would compile a second graph for little gain.
        self.learn_online = torch.compile(self.online, dynamic=False) if compile_learner else self.online
        self.learn_target = torch.compile(self.target, dynamic=False) if compile_learner else self.target
        self.optimizer = build_optimizer(optimizer_cfg, self.online.parameters())
        self.optimizer_cfg = optimizer_cfg
        self.target_cfg = target_cfg
        self.gamma = gamma
        self.loss = loss
        self.double_q = double_q
        self.device = device

    @torch.inference_mode()
    def act(self, obs: np.ndarray, epsilon: float, rng: np.random.Generator, n_actions: int) -> np.ndarray:
        """Epsilon-greedy actions for a batch of observations (one per env)."""
        explore = rng.random(len(obs)) < epsilon
        if explore.all():
            return rng.integers(0, n_actions, size=len(obs))
        # Observations cross to the device in their own dtype (uint8 screens: a quarter of the bytes).
        actions = self.online(torch.from_numpy(np.asarray(obs)).to(self.device).float())
        actions = actions.argmax(dim=1).cpu().numpy()
        if explore.any():
            actions[explore] = rng.integers(0, n_actions, size=int(explore.sum()))
        return actions

    def learn(self, batch: Batch) -> "LearnResult":
        """One gradient step on the TD loss; returns the loss, the mean Q of the taken actions and
        each sample's |TD error| (what prioritized replay uses as priority), all detached."""
        q_taken = self.learn_online(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            next_q_target = self.learn_target(batch.next_obs)
            next_q_online = self.learn_online(batch.next_obs) if self.double_q else None
            discount = self.gamma if batch.discounts is None else batch.discounts  # n-step: gamma^k per row
            targets = td_targets(batch.rewards, batch.terminated, discount, next_q_target, next_q_online)
        loss = td_loss(q_taken, targets, self.loss, batch.weights)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.optimizer_cfg.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.online.parameters(), self.optimizer_cfg.max_grad_norm)
        if self.optimizer_cfg.max_grad_value is not None:
            nn.utils.clip_grad_value_(self.online.parameters(), self.optimizer_cfg.max_grad_value)
        self.optimizer.step()
        q_taken = q_taken.detach()
        return LearnResult(loss.detach(), q_taken.mean(), (q_taken - targets).abs())

    def update_target(self) -> None:
        update_target(self.target_cfg, self.target, self.online)

    def state_dict(self) -> Dict[str, dict]:
        return {"online": self.online.state_dict(), "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Dict[str, dict]) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
