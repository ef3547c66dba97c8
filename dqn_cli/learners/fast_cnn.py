"""The fast learner for one-convolution CNNs (MinAtar's network: a 3x3 convolution, a hidden layer,
the Q-values): the same update as AutogradLearner, without autograd's bookkeeping.

On 10x10 grids the convolution is tiny, and an autograd update is mostly per-node overhead plus
a convolution kernel sized for large images. Here the convolution is a matrix product over image
patches gathered by a precomputed index (im2col), and the backward pass is written by hand. The
first layer needs no gradient for its input, so no patches are scattered back. The gate
(`FastCNNLearner.covers`) says which networks and losses this handles; the tests check it takes
the steps autograd takes.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from dqn_cli.learners.fast_mlp import _ACTIVATIONS, BackpropLearner
from dqn_cli.networks import NatureCNN, channels_first


def patch_index(obs_shape, channels_last: bool, kernel: int, stride: int) -> torch.Tensor:
    """For a flattened observation: the positions of every patch's cells, patch by patch, each
    patch in the order of a Conv2d weight's (channel, row, column) axes."""
    (channels, height, width), _ = channels_first(obs_shape)
    c, di, dj = torch.meshgrid(torch.arange(channels), torch.arange(kernel), torch.arange(kernel), indexing="ij")
    rows = torch.arange(0, height - kernel + 1, stride)
    cols = torch.arange(0, width - kernel + 1, stride)
    i, j = torch.meshgrid(rows, cols, indexing="ij")
    r = i.reshape(-1, 1) + di.reshape(1, -1)  # (patches, cells)
    q = j.reshape(-1, 1) + dj.reshape(1, -1)
    channel = c.reshape(1, -1)
    flat = (r * width + q) * channels + channel if channels_last else (channel * height + r) * width + q
    return flat.reshape(-1)


class SmallCNNBackprop:
    """Forward and backward passes of a NatureCNN with one convolution and a plain linear head."""

    EXACT_FORWARD = False  # im2col products round differently from Conv2d (within 1e-6)

    def __init__(self, network: NatureCNN):
        self.network = network
        self.conv, self.hidden, self.head = network.conv[0], network.torso[0], network.head
        self.activate, self.activation_backward = _ACTIVATIONS[str(network.activation)]
        self.index = patch_index(network.obs_shape, network.channels_last, self.conv.kernel_size[0],
                                 self.conv.stride[0]).to(self.conv.weight.device)
        self.cells = self.conv.weight[0].numel()  # channels x kernel x kernel
        # Acting reads the weights through views made once; the optimizer steps them in place.
        self.acting_weights = tuple(tensor.detach() for tensor in (
            self.conv.weight.view(len(self.conv.weight), -1).t(), self.conv.bias,
            self.hidden.weight.t(), self.hidden.bias, self.head.weight.t(), self.head.bias))

    @staticmethod
    def covers(network: nn.Module) -> bool:
        return (type(network) is NatureCNN and len(network.conv) == 3  # Conv2d, activation, Flatten
                and type(network.head) is nn.Linear and not network.add_channel_axis
                and network.activation in _ACTIVATIONS and network.norm == "none")

    def prepared_obs(self, obs: torch.Tensor) -> torch.Tensor:
        """Every convolution window of every observation, scaled: (B, patches, cells)."""
        flat = obs.reshape(obs.shape[0], -1)
        if self.network.scale != 1.0:
            flat = flat * self.network.scale
        return flat.index_select(1, self.index).view(obs.shape[0], -1, self.cells)

    def forward(self, obs: torch.Tensor, saved: Optional[list] = None,
                patches: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Q-values (B, n_actions); `saved`, if given, collects what the backward pass needs; `patches`,
        those of `obs` if prepared_obs made them already."""
        batch = obs.shape[0]
        patches = self.prepared_obs(obs) if patches is None else patches
        conv_out = self.activate(torch.matmul(patches, self.conv.weight.view(len(self.conv.weight), -1).t())
                                 .add_(self.conv.bias))  # (B, P, out_channels)
        features = conv_out.transpose(1, 2).reshape(batch, -1)  # Conv2d's (channel, row, column) order
        hidden = self.activate(torch.addmm(self.hidden.bias, features, self.hidden.weight.t()))
        if saved is not None:
            saved += [patches, features, hidden]
        return torch.addmm(self.head.bias, hidden, self.head.weight.t())

    def q_values(self, obs: torch.Tensor) -> torch.Tensor:
        """forward()'s Q-values, bit for bit, in fewer eager calls: acting runs this every step on one
        observation, where Python's overhead per call is most of the time."""
        conv_weight, conv_bias, hidden_weight, hidden_bias, head_weight, head_bias = self.acting_weights
        patches = self.prepared_obs(obs).view(-1, self.cells)
        conv_out = self.activate(torch.mm(patches, conv_weight).add_(conv_bias))  # (B x patches, out_channels)
        features = conv_out.view(len(obs), -1, len(conv_bias)).transpose(1, 2).reshape(len(obs), -1)
        hidden = self.activate(torch.addmm(hidden_bias, features, hidden_weight))
        return torch.addmm(head_bias, hidden, head_weight)

    def backward(self, saved: list, grad_q: torch.Tensor) -> None:
        """Write d loss / d parameter into every .grad (overwriting), given d loss / d Q-values."""
        patches, features, hidden = saved
        torch.mm(grad_q.t(), hidden, out=self.head.weight.grad)
        torch.sum(grad_q, 0, out=self.head.bias.grad)
        grad = self.activation_backward(grad_q.mm(self.head.weight), hidden)
        torch.mm(grad.t(), features, out=self.hidden.weight.grad)
        torch.sum(grad, 0, out=self.hidden.bias.grad)
        grad = self.activation_backward(grad.mm(self.hidden.weight), features)
        out_channels = len(self.conv.weight)
        grad = grad.view(len(grad), out_channels, -1)  # (B, out_channels, P)
        torch.mm(grad.transpose(0, 1).reshape(out_channels, -1), patches.reshape(-1, self.cells),
                 out=self.conv.weight.grad.view(out_channels, -1))
        torch.sum(grad, (0, 2), out=self.conv.bias.grad)


class FastCNNLearner(BackpropLearner):
    """AutogradLearner's update for a one-convolution CNN."""

    BACKPROP = SmallCNNBackprop


def _layer_norm(x: torch.Tensor, norm: nn.LayerNorm) -> tuple:
    """(output, mean, rstd): the kernel nn.LayerNorm runs, keeping what its backward needs."""
    return torch.ops.aten.native_layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def _layer_norm_backward(grad: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor,
                         norm: nn.LayerNorm) -> torch.Tensor:
    """d loss / d x, writing d loss / d weight and bias into their .grad: autograd's own kernel."""
    grad_x, grad_weight, grad_bias = torch.ops.aten.native_layer_norm_backward(
        grad, x, norm.normalized_shape, mean, rstd, norm.weight, norm.bias, [True, True, True])
    norm.weight.grad.copy_(grad_weight)
    norm.bias.grad.copy_(grad_bias)
    return grad_x


class LayerNormCNNBackprop(SmallCNNBackprop):
    """The same passes for PQN's MinAtar network: LayerNorm over the channels after the convolution
    and over the units of the hidden layer, each before its activation (network.norm=layer)."""

    def __init__(self, network: NatureCNN):
        super().__init__(network)
        self.conv_norm, self.hidden_norm = network.conv[1], network.torso[1]

    @staticmethod
    def covers(network: nn.Module) -> bool:
        return (type(network) is NatureCNN and len(network.conv) == 4  # Conv2d, LayerNorm, activation, Flatten
                and len(network.torso) == 3 and type(network.head) is nn.Linear and not network.add_channel_axis
                and network.activation in _ACTIVATIONS and network.norm == "layer")

    def forward(self, obs: torch.Tensor, saved: Optional[list] = None,
                patches: Optional[torch.Tensor] = None) -> torch.Tensor:
        batch = obs.shape[0]
        patches = self.prepared_obs(obs) if patches is None else patches
        conv_pre = torch.matmul(patches, self.conv.weight.view(len(self.conv.weight), -1).t()).add_(self.conv.bias)
        conv_normed, conv_mean, conv_rstd = _layer_norm(conv_pre, self.conv_norm)  # over channels, per position
        features = self.activate(conv_normed).transpose(1, 2).reshape(batch, -1)  # Conv2d's (channel, row, column)
        hidden_pre = torch.addmm(self.hidden.bias, features, self.hidden.weight.t())
        hidden_normed, hidden_mean, hidden_rstd = _layer_norm(hidden_pre, self.hidden_norm)
        hidden = self.activate(hidden_normed)
        if saved is not None:
            saved += [patches, conv_pre, conv_mean, conv_rstd, features, hidden_pre, hidden_mean, hidden_rstd, hidden]
        return torch.addmm(self.head.bias, hidden, self.head.weight.t())

    q_values = forward

    def backward(self, saved: list, grad_q: torch.Tensor) -> None:
        patches, conv_pre, conv_mean, conv_rstd, features, hidden_pre, hidden_mean, hidden_rstd, hidden = saved
        torch.mm(grad_q.t(), hidden, out=self.head.weight.grad)
        torch.sum(grad_q, 0, out=self.head.bias.grad)
        grad = self.activation_backward(grad_q.mm(self.head.weight), hidden)
        grad = _layer_norm_backward(grad, hidden_pre, hidden_mean, hidden_rstd, self.hidden_norm)
        torch.mm(grad.t(), features, out=self.hidden.weight.grad)
        torch.sum(grad, 0, out=self.hidden.bias.grad)
        grad = self.activation_backward(grad.mm(self.hidden.weight), features)
        out_channels = len(self.conv.weight)
        grad = grad.view(len(grad), out_channels, -1).transpose(1, 2).contiguous()  # (B, P, out_channels)
        grad = _layer_norm_backward(grad, conv_pre, conv_mean, conv_rstd, self.conv_norm)
        torch.mm(grad.reshape(-1, out_channels).t(), patches.reshape(-1, self.cells),
                 out=self.conv.weight.grad.view(out_channels, -1))
        torch.sum(grad, (0, 1), out=self.conv.bias.grad)


class FastLayerNormCNNLearner(BackpropLearner):
    """AutogradLearner's update for PQN's one-convolution CNN with LayerNorm."""

    BACKPROP = LayerNormCNNBackprop
