"""The fast learner for plain MLP Q-networks: the update of learners/update.py, computed without
autograd's bookkeeping. A default `dqn-train` (CartPole, an MLP, Huber loss) learns through it.

For a CartPole-size network most of an autograd update is bookkeeping (graph nodes, saved
tensors, one dispatch per node) and torch.optim's per-step Python, not arithmetic. Here the
backward pass is written by hand (the same matrix products autograd runs, in the same order,
written straight into the flat gradient), and Adam is the one fused kernel call torch.optim would
make. The gate (`FastMLPLearner.covers`) says which networks and losses this handles; everything
else learns through AutogradLearner, and the tests check the two give the same weights.
"""

from __future__ import annotations

from typing import List, Optional

import torch
from torch import nn

from dqn_cli.learners.adam import FlatOptimizer, Optimizer
from dqn_cli.learners.base import Learner
from dqn_cli.learners.flat import FlatParameters
from dqn_cli.learners.update import LearnResult, UpdateSettings
from dqn_cli.networks import MLPQNetwork
from dqn_cli.replay import Batch

# activation -> (in-place forward, backward from the activation's *output*), as autograd computes them
_ACTIVATIONS = {
    "relu": (torch.Tensor.relu_, lambda grad, out: torch.ops.aten.threshold_backward(grad, out, 0)),
    "tanh": (torch.Tensor.tanh_, torch.ops.aten.tanh_backward),
}

# loss -> d loss / d (q - target) per sample (of update.LOSSES), in place on the TD error, as autograd
# computes it
_LOSS_GRADIENTS = {
    "huber": lambda error: error.clamp_(-1.0, 1.0),
    "mse": lambda error: error.mul_(2.0),
}


def td_loss_grad(q_taken: torch.Tensor, targets: torch.Tensor, kind: str,
                 weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """d mean(update.td_loss) / d q_taken, per sample."""
    per_sample = _LOSS_GRADIENTS[kind](q_taken - targets)
    # d mean / d per-sample loss, then the chain rule, in autograd's order (same rounding)
    scale = 1.0 / len(q_taken) if weights is None else weights * (1.0 / len(q_taken))
    return per_sample.mul_(scale)


class MLPBackprop:
    """Forward and backward passes of an MLPQNetwork (Linear, activation, ..., Linear)."""

    EXACT_FORWARD = True  # the same addmm calls as nn.Linear: the module's Q-values bit for bit

    def __init__(self, network: MLPQNetwork):
        self.linears: List[nn.Linear] = [m for m in network.modules() if isinstance(m, nn.Linear)]
        self.activate, self.activation_backward = _ACTIVATIONS[str(network.activation)]

    @staticmethod
    def covers(network: nn.Module) -> bool:
        return type(network) is MLPQNetwork and network.activation in _ACTIVATIONS and network.norm == "none"

    def prepared_obs(self, obs: torch.Tensor) -> None:
        return None  # the first layer takes the observations as they are

    def forward(self, obs: torch.Tensor, inputs: Optional[list] = None, prepared_obs: None = None) -> torch.Tensor:
        """Q-values (B, n_actions); `inputs`, if given, collects what each layer received.
        Call it under torch.no_grad() or inference_mode()."""
        h = obs.flatten(1)
        for i, layer in enumerate(self.linears):
            if inputs is not None:
                inputs.append(h)
            h = torch.addmm(layer.bias, h, layer.weight.t())
            if i < len(self.linears) - 1:
                h = self.activate(h)
        return h

    q_values = forward  # acting's pass: as lean as it gets already

    def backward(self, inputs: list, grad_q: torch.Tensor) -> None:
        """Write d loss / d parameter into every .grad (overwriting), given d loss / d Q-values."""
        grad = grad_q
        for i in reversed(range(len(self.linears))):
            layer, layer_input = self.linears[i], inputs[i]
            torch.mm(grad.t(), layer_input, out=layer.weight.grad)
            torch.sum(grad, 0, out=layer.bias.grad)
            if i > 0:  # the observations need no gradient
                grad = self.activation_backward(grad.mm(layer.weight), layer_input)


class BackpropLearner(Learner):
    """AutogradLearner's update with the backward pass written by hand (`BACKPROP`: a class with
    `covers(network)`, `forward(obs, saved, prepared_obs)`, `backward(saved, grad_q)`, `q_values(obs)`,
    the forward pass for acting, and `prepared_obs(obs)`, what of the forward pass can be done ahead)."""

    BACKPROP: type

    def __init__(self, online: nn.Module, target: nn.Module, weights: FlatParameters, optimizer: Optimizer,
                 settings: UpdateSettings):
        self.backprop = self.BACKPROP(online)
        super().__init__(self.backprop.forward, self.BACKPROP(target).forward, weights, optimizer, settings)
        self.act_q = self.backprop.q_values

    @classmethod
    def covers(cls, network: nn.Module, loss: str) -> bool:
        """The gate: the networks and losses whose gradient this learner knows."""
        return cls.BACKPROP.covers(network) and loss in _LOSS_GRADIENTS

    def prepare(self, batch: Batch) -> Batch:
        return super().prepare(batch)._replace(prepared_obs=self.backprop.prepared_obs(batch.obs))

    def learn(self, batch: Batch) -> LearnResult:
        if batch.targets is not None:  # computed ahead (prefetch=true)
            return self.fit(batch.obs, batch.actions, batch.targets, batch.weights, batch.prepared_obs)
        result = self.td_backprop(batch._replace(indices=None))  # the slots are numpy: not the graph's
        self.clip_and_step()
        return result

    def fit(self, obs: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor,
            weights: Optional[torch.Tensor] = None, prepared_obs: Optional[torch.Tensor] = None) -> LearnResult:
        result = self.loss_backprop(obs, actions, targets, weights, prepared_obs)
        self.clip_and_step()
        return result

    def td_backprop(self, batch: Batch) -> LearnResult:
        """The batch's TD targets, and the gradient of the TD loss toward them in the flat .grad."""
        return self.loss_backprop(batch.obs, batch.actions, self.td_targets(batch), batch.weights)

    @torch.no_grad()
    def loss_backprop(self, obs: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor,
                      weights: Optional[torch.Tensor] = None, prepared_obs: Optional[torch.Tensor] = None) -> LearnResult:
        """The gradient of td_loss(Q(obs, actions), targets), written into the flat .grad."""
        actions = actions.unsqueeze(1)
        saved: list = []
        q_values = self.backprop.forward(obs, saved, prepared_obs)
        q_taken = q_values.gather(1, actions).squeeze(1)
        grad_taken = td_loss_grad(q_taken, targets, self.settings.loss, weights)
        self.backprop.backward(saved, torch.zeros_like(q_values).scatter_(1, actions, grad_taken.unsqueeze(1)))
        return LearnResult(q_taken, targets, weights, self.settings.loss)

    def clip_and_step(self) -> None:
        self.clip_gradients()
        self.optimizer.step()

    def compile(self) -> None:
        """torch.compile the update: the target network's pass and the forward and backward passes as
        one graph of fused kernels, and the optimizer step as another (FlatOptimizer.compile; one graph
        with both is slower, its guards and fusions heavier). Clipping stays eager: in the graph that
        writes the per-layer gradients, torch cannot also read the flat tensor they are views of. The
        numbers round differently from the eager update's."""
        options = {"fullgraph": True, "dynamic": False}
        self.td_backprop = torch.compile(self.td_backprop, **options)  # DQN
        self.loss_backprop = torch.compile(self.loss_backprop, **options)  # PQN: targets of its own
        if isinstance(self.optimizer, FlatOptimizer):  # torch.optim's SGD steps as it is
            self.optimizer.compile()


class FastMLPLearner(BackpropLearner):
    """AutogradLearner's update for a plain MLP."""

    BACKPROP = MLPBackprop
