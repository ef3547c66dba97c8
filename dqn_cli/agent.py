"""The DQN agent: online and target Q-networks; acts epsilon-greedily, learns through a learner
(the update of learners/update.py), updates the target."""

from __future__ import annotations

import copy
from typing import Dict

import numpy as np
import torch
from torch import nn

from dqn_cli.config import TrainConfig
from dqn_cli.errors import RunDirError
from dqn_cli.exploration import epsilon_greedy
from dqn_cli.learners import (FlatParameters, LearnResult, UpdateSettings, build_learner, build_optimizer,
                              load_optimizer_state)
from dqn_cli.replay import Batch
from dqn_cli.target import update_target


class DQNAgent:
    """Both networks keep their weights in one flat tensor each (FlatParameters), so the
    optimizer step, clipping and the target update are one tensor op each."""

    def __init__(self, q_network: nn.Module, cfg: TrainConfig, device: torch.device, fast_learner: bool = True):
        """Reads cfg.optimizer, cfg.target, the update's keys (gamma, loss, double_q, gradient
        clipping), cfg.compile and cfg.cuda_graph; `fast_learner=False` forces autograd (tests)."""
        self.online = q_network.to(device)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.online_weights = FlatParameters(self.online)
        self.target_weights = FlatParameters(self.target, grads=False)
        self.optimizer = build_optimizer(cfg.optimizer, self.online_weights.param)
        self.learner = build_learner(self.online, self.target, self.online_weights, self.optimizer,
                                     UpdateSettings.of(cfg), compile_update=cfg.compile, fast=fast_learner,
                                     cuda_graph=cfg.cuda_graph)
        # Acting stays eager: a batch of one would compile a second graph (a compiled learner's own
        # forward pass is a compiled module; a fast learner compiles its update, not its forward pass).
        self.act_q = self.online if isinstance(self.learner.online_q, nn.Module) else self.learner.act_q
        # Evaluations score the module's own Q-values; a learner's faster pass where it gives the same bits.
        exact = getattr(getattr(self.learner, "backprop", None), "EXACT_FORWARD", False)
        self.eval_q = self.act_q if exact and not cfg.compile else self.online
        self.target_cfg = cfg.target
        self.target_syncs = 0  # target updates so far in this process (prefetched targets check it)
        self.device = device

    @torch.inference_mode()
    def act(self, obs: np.ndarray, epsilon: float, rng: np.random.Generator, n_actions: int) -> np.ndarray:
        """Epsilon-greedy actions for a batch of observations (one per env)."""
        def greedy_actions() -> np.ndarray:
            # Observations cross to the device in their own dtype (uint8 screens: a quarter of the bytes).
            q_values = self.act_q(torch.from_numpy(np.asarray(obs)).to(self.device).float())
            return q_values.argmax(dim=1).cpu().numpy()

        return epsilon_greedy(greedy_actions, len(obs), epsilon, rng, n_actions)

    def learn(self, batch: Batch) -> LearnResult:
        """One gradient step on the TD loss; returns what it saw (loss, mean Q and |TD errors| on demand)."""
        return self.learner.learn(batch)

    def update_target(self, times: int = 1) -> None:
        update_target(self.target_cfg, self.target_weights.data, self.online_weights.data, times)
        self.target_syncs += 1

    def state_dict(self) -> Dict[str, dict]:
        return {"online": self.online.state_dict(), "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Dict[str, dict]) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        try:
            load_optimizer_state(self.optimizer, state["optimizer"])
        except ValueError:
            raise RunDirError("this checkpoint's optimizer state is from an older dqn-cli (one entry per "
                              "parameter) and cannot be resumed; dqn-eval still evaluates it") from None
