"""Learners: how a batch becomes a gradient step. The update itself is learners/update.py, on one
screen; AutogradLearner runs it through autograd, for any network. FastMLPLearner and FastCNNLearner
compute the same gradient faster for the networks and losses their gates cover (a default CartPole
run takes FastMLPLearner, MinAtar's one-convolution CNN FastCNNLearner); compile=true compiles a fast
learner's update (BackpropLearner.compile); CUDAGraphLearner replays any of them as one CUDA graph on a
GPU. `build_learner` picks."""

from __future__ import annotations

from typing import Union

import torch
from torch import nn

from dqn_cli.config import AdamConfig, AdamWConfig, OptimizerConfig, RAdamConfig, RMSpropConfig, SGDConfig
from dqn_cli.learners.adam import FlatAdam, FlatOptimizer, FlatRAdam, FlatRMSprop, Optimizer
from dqn_cli.learners.autograd import AutogradLearner
from dqn_cli.learners.base import Learner
from dqn_cli.learners.cuda_graph import CUDAGraphLearner
from dqn_cli.learners.fast_cnn import FastCNNLearner, FastLayerNormCNNLearner
from dqn_cli.learners.fast_mlp import FastMLPLearner
from dqn_cli.learners.flat import FlatParameters
from dqn_cli.learners.update import LearnResult, UpdateSettings

__all__ = ["AutogradLearner", "CUDAGraphLearner", "FastCNNLearner", "FastLayerNormCNNLearner", "FastMLPLearner",
           "FlatAdam", "FlatOptimizer", "FlatParameters", "FlatRAdam", "FlatRMSprop",
           "Learner", "LearnResult", "Optimizer", "UpdateSettings", "build_learner", "build_optimizer",
           "load_optimizer_state", "set_learning_rate"]


def build_optimizer(cfg: OptimizerConfig, param: torch.Tensor) -> Optimizer:
    """The optimizer of `param`, the one flat tensor of a network's weights (FlatParameters.param)."""
    common = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if isinstance(cfg, AdamConfig):
        return FlatAdam(param, betas=tuple(cfg.betas), eps=cfg.eps, amsgrad=cfg.amsgrad,
                        decoupled_weight_decay=isinstance(cfg, AdamWConfig), **common)
    if isinstance(cfg, RAdamConfig):
        return FlatRAdam(param, betas=tuple(cfg.betas), eps=cfg.eps, **common)
    if isinstance(cfg, RMSpropConfig):
        return FlatRMSprop(param, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum, centered=cfg.centered,
                           **common)
    if isinstance(cfg, SGDConfig):
        return torch.optim.SGD([param], momentum=cfg.momentum, nesterov=cfg.nesterov, **common)
    raise TypeError(f"unknown optimizer config {type(cfg).__name__}")


def set_learning_rate(optimizer: Optimizer, lr: float) -> None:
    """The learning rate of the next steps (a decay schedule calls this before each)."""
    if isinstance(optimizer, FlatOptimizer):
        optimizer.group["lr"] = lr
    else:
        for group in optimizer.param_groups:
            group["lr"] = lr


def load_optimizer_state(optimizer: Optimizer, state: dict) -> None:
    """A checkpoint's optimizer state (moments, step counts) under this optimizer's own hyperparameters,
    which come from the config: `resume=<run> optimizer.lr=...` must change the learning rate."""
    configured = [{key: value for key, value in group.items() if key != "params"} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    if not isinstance(optimizer, FlatOptimizer):  # torch.optim restores the saved hyperparameters too
        for group, values in zip(optimizer.param_groups, configured):
            group.update(values)


def build_learner(online: nn.Module, target: nn.Module, weights: FlatParameters, optimizer: Optimizer,
                  settings: UpdateSettings, *, compile_update: bool = False, fast: bool = True,
                  cuda_graph: bool = False) -> Union[Learner, CUDAGraphLearner]:
    """A fast learner where its gate lets it (and `fast=False` does not ask for autograd),
    AutogradLearner otherwise. `compile_update` compiles a fast learner's whole update
    (BackpropLearner.compile), or autograd's forward passes; `cuda_graph` replays the update as a
    CUDA graph when the weights are on a GPU."""
    learner = next((fast_learner(online, target, weights, optimizer, settings)
                    for fast_learner in (FastMLPLearner, FastCNNLearner, FastLayerNormCNNLearner)
                    if fast and fast_learner.covers(online, settings.loss)), None)
    if learner is None:
        if compile_update:
            online, target = torch.compile(online, dynamic=False), torch.compile(target, dynamic=False)
        learner = AutogradLearner(online, target, weights, optimizer, settings)
    elif compile_update:
        learner.compile()
    return CUDAGraphLearner(learner) if cuda_graph and weights.data.is_cuda else learner
