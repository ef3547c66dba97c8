"""How the network learns: the optimizer group and the algorithm group."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from omegaconf import MISSING

from dqn_cli.config.choices import require, require_null_or_positive, require_positive
from dqn_cli.config.groups import EnvConfig


# ---------------------------------------------------------------------------------------------
# optimizer


@dataclass
class OptimizerConfig:
    name: str = MISSING
    lr: float = 1e-3
    """Learning rate."""
    weight_decay: float = 0.0
    """L2 penalty (decoupled for adamw)."""
    max_grad_norm: Optional[float] = None
    """Clip the global gradient norm to this value (None: no clipping)."""
    max_grad_value: Optional[float] = None
    """Clip every gradient element to [-v, v] (None: no clipping)."""

    def __post_init__(self):
        require_positive(self, "optimizer.", "lr")
        require(self.weight_decay >= 0, "optimizer.weight_decay", self.weight_decay, ">= 0")
        require_null_or_positive(self, "optimizer.", "max_grad_norm", "max_grad_value")


@dataclass
class MomentsOptimizerConfig(OptimizerConfig):
    """What Adam and RAdam share: running estimates of the gradient's first and second moments."""
    name: str = MISSING
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    """Decay rates of the first and second moment estimates."""
    eps: float = 1e-8
    """Added to the denominator for numerical stability."""

    def __post_init__(self):
        super().__post_init__()
        require(self.eps >= 0, "optimizer.eps", self.eps, "a float >= 0")
        require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "optimizer.betas", list(self.betas),
                "two floats in [0, 1)")


@dataclass
class AdamConfig(MomentsOptimizerConfig):
    name: str = "adam"
    lr: float = 2.5e-3
    """Learning rate."""
    amsgrad: bool = False
    """Use the maximum of past second moments (AMSGrad)."""


@dataclass
class RAdamConfig(MomentsOptimizerConfig):
    """RAdam (Liu et al., 2020): Adam with the variance of its early steps rectified."""
    name: str = "radam"
    lr: float = 1e-3
    """Learning rate."""


@dataclass
class AdamWConfig(AdamConfig):
    name: str = "adamw"
    weight_decay: float = 0.01
    """Decoupled weight decay."""


@dataclass
class RMSpropConfig(OptimizerConfig):
    name: str = "rmsprop"
    alpha: float = 0.99
    """Smoothing constant of the squared-gradient average."""
    eps: float = 1e-8
    """Added to the denominator for numerical stability."""
    momentum: float = 0.0
    """Momentum factor."""
    centered: bool = False
    """Normalise by the gradient's estimated variance (the DQN paper's RMSProp)."""

    def __post_init__(self):
        super().__post_init__()
        require(self.alpha >= 0, "optimizer.alpha", self.alpha, "a float >= 0")
        require(self.eps >= 0, "optimizer.eps", self.eps, "a float >= 0")
        require(self.momentum >= 0, "optimizer.momentum", self.momentum, "a float >= 0")


@dataclass
class SGDConfig(OptimizerConfig):
    name: str = "sgd"
    momentum: float = 0.0
    """Momentum factor."""
    nesterov: bool = False
    """Nesterov momentum (needs momentum > 0)."""

    def __post_init__(self):
        super().__post_init__()
        require(self.momentum >= 0, "optimizer.momentum", self.momentum, "a float >= 0")
        require(not self.nesterov or self.momentum > 0, "optimizer.nesterov", self.nesterov,
                "true only with optimizer.momentum > 0")


# ---------------------------------------------------------------------------------------------
# algorithm


@dataclass
class AlgorithmConfig:
    name: str = MISSING


@dataclass
class DQNConfig(AlgorithmConfig):
    """DQN: its keys are the top-level ones (batch_size, learning_starts, train_freq, ...), buffer and target."""
    name: str = "dqn"


@dataclass
class PQNConfig(AlgorithmConfig):
    name: str = "pqn"
    rollout_steps: int = 32
    """Steps each env takes per rollout: a rollout is env.num_envs x rollout_steps transitions."""
    td_lambda: float = 0.65
    """lambda of the lambda-returns the network is fit to (0: one-step targets, 1: Monte Carlo returns)."""
    epochs: int = 2
    """Passes over each rollout."""
    minibatches: int = 32
    """Minibatches per pass; each is (env.num_envs x rollout_steps) / minibatches transitions."""
    lr_decay: bool = True
    """Decay optimizer.lr linearly to 0 over the run's gradient steps."""

    def __post_init__(self):
        require_positive(self, "algorithm.", "rollout_steps", "epochs", "minibatches")
        require(0.0 <= self.td_lambda <= 1.0, "algorithm.td_lambda", self.td_lambda, "0 <= td_lambda <= 1")

    def check_fits(self, env: EnvConfig) -> None:
        """A rollout must split into equal minibatches."""
        transitions = env.num_envs * self.rollout_steps
        require(transitions % self.minibatches == 0, "algorithm.minibatches", self.minibatches,
                f"a divisor of env.num_envs x algorithm.rollout_steps ({transitions})")
