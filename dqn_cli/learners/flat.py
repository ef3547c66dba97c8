"""A module's parameters (and their gradients) as views into one contiguous tensor each."""

from __future__ import annotations

import torch
from torch import nn


class FlatParameters:
    """Gives every parameter of `module` storage inside one flat tensor, `data`, and (with
    `grads=True`) its .grad inside another, `grad`. The module works as before, but what
    touches all weights at once becomes one tensor op instead of one per parameter: the
    optimizer step (it steps `param`, a single Parameter over `data`), gradient clipping and
    zeroing, and target-network updates. For a small MLP those per-parameter calls cost as much
    as the arithmetic. Build it after the module is on its device (moving it would copy the
    parameters out of the flat tensor)."""

    def __init__(self, module: nn.Module, grads: bool = True):
        params = list(module.parameters())
        with torch.no_grad():
            self.data = torch.cat([p.reshape(-1) for p in params])
        self.grad = torch.zeros_like(self.data) if grads else None
        offset = 0
        for p in params:
            end = offset + p.numel()
            p.data = self.data[offset:end].view_as(p)
            if grads:
                # Autograd adds into an existing .grad in place, so backward fills `grad` too.
                p.grad = self.grad[offset:end].view_as(p)
            offset = end
        self.param = nn.Parameter(self.data, requires_grad=grads)  # shares data's storage
        self.param.grad = self.grad

    def zero_grad(self) -> None:
        """Zero every gradient in place (set_to_none would cut the parameters' .grad views loose)."""
        self.grad.zero_()
