"""Target-network updates: hard copy and polyak averaging, in place on flat weight tensors."""

from __future__ import annotations

import torch

from dqn_cli.config import HardTargetConfig, SoftTargetConfig


@torch.no_grad()
def hard_update(target: torch.Tensor, online: torch.Tensor) -> None:
    """target <- online."""
    target.copy_(online)


@torch.no_grad()
def soft_update(target: torch.Tensor, online: torch.Tensor, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target (polyak averaging)."""
    target.lerp_(online, tau)


def update_target(cfg, target: torch.Tensor, online: torch.Tensor, times: int = 1) -> None:
    """Update the target network's weights (all of them in one tensor, see FlatParameters) as
    `times` updates in a row would: several envs can pass several target intervals in one step,
    and `times` polyak steps toward the same online weights are one step of 1 - (1 - tau)^times."""
    if isinstance(cfg, HardTargetConfig):
        hard_update(target, online)
    elif isinstance(cfg, SoftTargetConfig):
        soft_update(target, online, cfg.tau if times == 1 else 1.0 - (1.0 - cfg.tau) ** times)
    else:
        raise TypeError(f"unknown target config {type(cfg).__name__}")
