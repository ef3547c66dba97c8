"""Q-networks: observation -> one Q-value per action. Forward passes only."""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from dqn_cli.config import DuelingConfig, MLPConfig

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}


def mlp(in_features: int, hidden_sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Stack of Linear + activation layers; its output width is hidden_sizes[-1]."""
    layers: List[nn.Module] = []
    width = in_features
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), _ACTIVATIONS[activation]()]
        width = size
    return nn.Sequential(*layers)


def _head(in_features: int, hidden: int, out_features: int, activation: str) -> nn.Module:
    if hidden <= 0:
        return nn.Linear(in_features, out_features)
    return nn.Sequential(mlp(in_features, [hidden], activation), nn.Linear(hidden, out_features))


class MLPQNetwork(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: Sequence[int], activation: str):
        super().__init__()
        self.torso = mlp(obs_dim, hidden_sizes, activation)
        self.head = nn.Linear(hidden_sizes[-1], n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.torso(obs.flatten(1)))


class DuelingQNetwork(nn.Module):
    """Q(s, a) = V(s) + A(s, a) - mean_a A(s, a) over a shared torso (Wang et al., 2016)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: Sequence[int], activation: str,
                 head_hidden_size: int = 0):
        super().__init__()
        self.torso = mlp(obs_dim, hidden_sizes, activation)
        self.value = _head(hidden_sizes[-1], head_hidden_size, 1, activation)
        self.advantage = _head(hidden_sizes[-1], head_hidden_size, n_actions, activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.torso(obs.flatten(1))
        advantage = self.advantage(features)
        return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)


def build_q_network(cfg, obs_dim: int, n_actions: int) -> nn.Module:
    """Build the Q-network a `network` config describes."""
    if isinstance(cfg, DuelingConfig):
        return DuelingQNetwork(obs_dim, n_actions, cfg.hidden_sizes, cfg.activation, cfg.head_hidden_size)
    if isinstance(cfg, MLPConfig):
        return MLPQNetwork(obs_dim, n_actions, cfg.hidden_sizes, cfg.activation)
    raise TypeError(f"unknown network config {type(cfg).__name__}")
