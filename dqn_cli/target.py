"""Target-network updates: hard copy and polyak averaging, in place with foreach ops."""

from __future__ import annotations

from typing import List

import torch
from torch import nn

from dqn_cli.config import HardTargetConfig, SoftTargetConfig


def _tensors(module: nn.Module) -> List[torch.Tensor]:
    # Q-networks here hold parameters only (no running statistics), so weights are the state.
    return [p.data for p in module.parameters()]


@torch.no_grad()
def hard_update(target: nn.Module, online: nn.Module) -> None:
    """target <- online."""
    torch._foreach_copy_(_tensors(target), _tensors(online))


@torch.no_grad()
def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target (polyak averaging)."""
    torch._foreach_lerp_(_tensors(target), _tensors(online), tau)


def update_target(cfg, target: nn.Module, online: nn.Module) -> None:
    if isinstance(cfg, HardTargetConfig):
        hard_update(target, online)
    elif isinstance(cfg, SoftTargetConfig):
        soft_update(target, online, cfg.tau)
    else:
        raise TypeError(f"unknown target config {type(cfg).__name__}")
