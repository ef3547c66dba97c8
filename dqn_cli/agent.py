"""One Q-learner: acts epsilon-greedily and learns from replay batches."""

from __future__ import annotations

import copy
from typing import Dict, NamedTuple, Optional

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
from dqn_cli.backprop import MLPBackprop
from dqn_cli.errors import RunDirError
from dqn_cli.flat import FlatParameters
from dqn_cli.losses import td_loss, td_loss_grad, td_targets
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


class FusedAdamStep:
    """optimizer.step() for a fused torch Adam or AdamW over one tensor (FlatParameters.param),
    made as the single kernel call torch.optim makes, on the optimizer's own state (so its
    state_dict is unchanged). It skips torch.optim's per-step Python: about 25 of the 40 us a
    CartPole-size step costs. Other optimizers, and the first step (which creates the state),
    go through optimizer.step()."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        group = optimizer.param_groups[0]
        fused = isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW) and group.get("fused")
        decoupled = group.get("decoupled_weight_decay", isinstance(optimizer, torch.optim.AdamW))
        kernel = getattr(torch, "_fused_adamw_" if decoupled else "_fused_adam_", None)
        self.kernel = kernel if fused and len(optimizer.param_groups) == 1 and len(group["params"]) == 1 else None

    def __call__(self) -> None:
        group = self.optimizer.param_groups[0]
        state = self.optimizer.state.get(group["params"][0]) if self.kernel is not None else None
        if not state:
            self.optimizer.step()
            return
        state["step"].add_(1)
        try:
            self.kernel(group["params"], [group["params"][0].grad], [state["exp_avg"]], [state["exp_avg_sq"]],
                        [state["max_exp_avg_sq"]] if group["amsgrad"] else [], [state["step"]],
                        amsgrad=group["amsgrad"], lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1],
                        weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"])
        except (TypeError, RuntimeError):  # a torch whose private kernel differs: take its public step
            state["step"].sub_(1)
            self.kernel = None
            self.optimizer.step()


class LearnResult(NamedTuple):
    """What one update saw, detached. Its loss and statistics are computed only when asked for:
    the loop asks once per TensorBoard point, for many updates at once (UpdateLog)."""
    q_taken: torch.Tensor  # (B,) Q of the actions taken, before the step
    targets: torch.Tensor  # (B,) TD targets
    weights: Optional[torch.Tensor]  # (B,) importance-sampling weights, or None
    loss_kind: str

    @property
    def loss(self) -> torch.Tensor:
        return td_loss(self.q_taken, self.targets, self.loss_kind, self.weights)

    @property
    def mean_q(self) -> torch.Tensor:
        return self.q_taken.mean()

    @property
    def td_errors(self) -> torch.Tensor:
        """Each sample's |TD error|: prioritized replay's new priority."""
        return (self.q_taken - self.targets).abs()


class DQNAgent:
    """Online and target Q-networks, their optimizer, and the two things DQN does with them."""

    def __init__(self, q_network: nn.Module, optimizer_cfg: OptimizerConfig, target_cfg, gamma: float,
                 loss: str, double_q: bool, device: torch.device, compile_learner: bool = False,
                 manual_backprop: bool = True):
        self.online = q_network.to(device)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.online_weights = FlatParameters(self.online)
        self.target_weights = FlatParameters(self.target, grads=False)
        # Plain MLPs learn through hand-written backprop (same products, none of autograd's
        # per-op bookkeeping); other networks through autograd, whose forward passes (fixed batch
        # shape) may be compiled. Acting stays eager: a batch of one would compile a second graph.
        self.backprop = (MLPBackprop(self.online) if manual_backprop and not compile_learner
                         and MLPBackprop.covers(self.online) else None)
        if self.backprop is not None:
            self.online_q, self.target_q = self.backprop.forward, MLPBackprop(self.target).forward
        elif compile_learner:
            self.online_q = torch.compile(self.online, dynamic=False)
            self.target_q = torch.compile(self.target, dynamic=False)
        else:
            self.online_q, self.target_q = self.online, self.target
        self.act_q = self.backprop.forward if self.backprop is not None else self.online
        self.optimizer = build_optimizer(optimizer_cfg, [self.online_weights.param])
        self.optimizer_step = FusedAdamStep(self.optimizer)
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
        actions = self.act_q(torch.from_numpy(np.asarray(obs)).to(self.device).float())
        actions = actions.argmax(dim=1).cpu().numpy()
        if explore.any():
            actions[explore] = rng.integers(0, n_actions, size=int(explore.sum()))
        return actions

    def learn(self, batch: Batch) -> "LearnResult":
        """One gradient step on the TD loss; returns what it saw (loss, mean Q and |TD errors| on demand)."""
        actions = batch.actions.unsqueeze(1)
        with torch.no_grad():
            next_q_target = self.target_q(batch.next_obs)
            next_q_online = self.online_q(batch.next_obs) if self.double_q else None
            discount = self.gamma if batch.discounts is None else batch.discounts  # n-step: gamma^k per row
            targets = td_targets(batch.rewards, batch.terminated, discount, next_q_target, next_q_online)
        if self.backprop is not None:
            with torch.no_grad():
                layer_inputs: list = []
                q_values = self.backprop.forward(batch.obs, layer_inputs)
                q_taken = q_values.gather(1, actions).squeeze(1)
                grad_taken = td_loss_grad(q_taken, targets, self.loss, batch.weights)
                self.backprop.backward(layer_inputs, torch.zeros_like(q_values).scatter_(1, actions,
                                                                                        grad_taken.unsqueeze(1)))
        else:
            q_taken = self.online_q(batch.obs).gather(1, actions).squeeze(1)
            loss = td_loss(q_taken, targets, self.loss, batch.weights)
            self.online_weights.grad.zero_()
            loss.backward()
            q_taken = q_taken.detach()
        grad = self.online_weights.grad  # every parameter's gradient, in one tensor
        if self.optimizer_cfg.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.online_weights.param, self.optimizer_cfg.max_grad_norm)
        if self.optimizer_cfg.max_grad_value is not None:
            grad.clamp_(-self.optimizer_cfg.max_grad_value, self.optimizer_cfg.max_grad_value)
        self.optimizer_step()
        return LearnResult(q_taken, targets, batch.weights, self.loss)

    def update_target(self) -> None:
        update_target(self.target_cfg, self.target_weights.data, self.online_weights.data)

    def state_dict(self) -> Dict[str, dict]:
        return {"online": self.online.state_dict(), "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Dict[str, dict]) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except ValueError:
            raise RunDirError("this checkpoint's optimizer state is from an older dqn-cli (one entry per "
                              "parameter) and cannot be resumed; dqn-eval still evaluates it") from None
