"""The TD-loss gradient of a plain MLP Q-network, worked out by hand.

For a CartPole-size network most of an autograd update is bookkeeping (graph nodes, saved
tensors, one dispatch per node), not arithmetic. `MLPBackprop` runs the same matrix products
autograd would, in the same order, and writes each gradient straight into its parameter's
.grad; the tests check the result against autograd. Networks it does not cover (dueling
heads, CNNs, other activations) learn through autograd.
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import nn

from dqn_cli.networks import MLPQNetwork

# activation -> (in-place forward, backward from the activation's *output*), as autograd computes them
_ACTIVATIONS = {
    "relu": (torch.Tensor.relu_, lambda grad, out: torch.ops.aten.threshold_backward(grad, out, 0)),
    "tanh": (torch.Tensor.tanh_, torch.ops.aten.tanh_backward),
}


class MLPBackprop:
    """Forward and backward passes of an MLPQNetwork (Linear, activation, ..., Linear)."""

    def __init__(self, network: MLPQNetwork):
        self.linears: List[nn.Linear] = [m for m in network.modules() if isinstance(m, nn.Linear)]
        self.activate, self.activation_backward = _ACTIVATIONS[network.activation]

    @staticmethod
    def covers(network: nn.Module) -> bool:
        return type(network) is MLPQNetwork and network.activation in _ACTIVATIONS

    def forward(self, obs: torch.Tensor, inputs: Optional[list] = None) -> torch.Tensor:
        """Q-values (B, n_actions); `inputs`, if given, collects what each layer received.
        Call it under torch.no_grad() or inference_mode(), as DQNAgent does."""
        h = obs.flatten(1)
        for i, layer in enumerate(self.linears):
            if inputs is not None:
                inputs.append(h)
            h = torch.addmm(layer.bias, h, layer.weight.t())
            if i < len(self.linears) - 1:
                h = self.activate(h)
        return h

    def backward(self, inputs: list, grad_q: torch.Tensor) -> None:
        """Write d loss / d parameter into every .grad (overwriting), given d loss / d Q-values."""
        grad = grad_q
        for i in reversed(range(len(self.linears))):
            layer, layer_input = self.linears[i], inputs[i]
            torch.mm(grad.t(), layer_input, out=layer.weight.grad)
            torch.sum(grad, 0, out=layer.bias.grad)
            if i > 0:  # the observations need no gradient
                grad = self.activation_backward(grad.mm(layer.weight), layer_input)
