"""Q-networks: observation -> one Q-value per action. Forward passes only."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from dqn_cli.config import AutoNetworkConfig, DuelingConfig, MLPConfig, NatureCNNConfig
from dqn_cli.errors import ConfigError

# config.choices.ACTIVATION_NAMES -> the module
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels at each position of a (batch, channels, height, width) map: what a
    LayerNorm on the last axis of a channels-last map computes (PQN's network)."""

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return super().forward(maps.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def norm_layer(norm: str, width: int, channels: bool = False) -> List[nn.Module]:
    """The normalisation before an activation: none, or LayerNorm over `width` features (channels)."""
    if str(norm) == "none":
        return []
    return [ChannelLayerNorm(width) if channels else nn.LayerNorm(width)]


def mlp(in_features: int, hidden_sizes: Sequence[int], activation: str, norm: str = "none") -> nn.Sequential:
    """Stack of Linear (+ LayerNorm) + activation layers; its output width is hidden_sizes[-1]."""
    layers: List[nn.Module] = []
    width = in_features
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), *norm_layer(norm, size), ACTIVATIONS[activation]()]
        width = size
    return nn.Sequential(*layers)


def _head(in_features: int, hidden: int, out_features: int, activation: str) -> nn.Module:
    if hidden <= 0:
        return nn.Linear(in_features, out_features)
    return nn.Sequential(mlp(in_features, [hidden], activation), nn.Linear(hidden, out_features))


class MLPQNetwork(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: Sequence[int], activation: str,
                 norm: str = "none"):
        super().__init__()
        self.activation, self.norm = str(activation), str(norm)
        self.torso = mlp(obs_dim, hidden_sizes, activation, norm)
        self.head = nn.Linear(hidden_sizes[-1], n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.torso(obs.flatten(1)))


class DuelingHeads(nn.Module):
    """Q(s, a) = V(s) + A(s, a) - mean_a A(s, a) on top of a feature vector (Wang et al., 2016)."""

    def __init__(self, in_features: int, n_actions: int, hidden: int, activation: str):
        super().__init__()
        self.value = _head(in_features, hidden, 1, activation)
        self.advantage = _head(in_features, hidden, n_actions, activation)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        advantage = self.advantage(features)
        return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)


class DuelingQNetwork(nn.Module):
    """Dueling heads over a shared MLP torso."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: Sequence[int], activation: str,
                 head_hidden_size: int = 0, norm: str = "none"):
        super().__init__()
        self.torso = mlp(obs_dim, hidden_sizes, activation, norm)
        self.heads = DuelingHeads(hidden_sizes[-1], n_actions, head_hidden_size, activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.heads(self.torso(obs.flatten(1)))


def is_image(shape: Sequence[int], dtype) -> bool:
    """Images: 3 axes (channels and a screen), or 2 axes of uint8 pixels (one grey screen)."""
    return len(shape) == 3 or (len(shape) == 2 and np.dtype(dtype) == np.uint8)


def channels_first(shape: Sequence[int]) -> Tuple[Tuple[int, int, int], bool]:
    """(C, H, W) of an image observation and whether it arrives channels-last (H, W, C), as
    Gymnasium's RGB screens and MinAtar-like square grids (10x10xC) do; stacked frames
    (env.frame_stack) arrive channels-first."""
    if len(shape) == 2:
        return (1, *shape), False
    if shape[-1] <= 4 < shape[0] or shape[0] == shape[1] != shape[2]:
        return (shape[2], shape[0], shape[1]), True
    return tuple(shape), False


def convolution_output(cfg: NatureCNNConfig, obs_shape: Sequence[int]) -> Tuple[int, int]:
    """Height and width left after the convolutions (< 1: the image is too small for them)."""
    _, height, width = channels_first(obs_shape)[0]
    for kernel, stride in zip(cfg.kernel_sizes, cfg.strides):
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
    return height, width


def small_image_cnn(activation: str) -> NatureCNNConfig:
    """For images too small for the Nature CNN (e.g. 10x10 MinAtar grids): one 3x3 convolution
    of 16 channels, then 128 units (Young & Tian's MinAtar network)."""
    return NatureCNNConfig(channels=[16], kernel_sizes=[3], strides=[1], hidden_size=128, activation=activation)


class NatureCNN(nn.Module):
    """The DQN-paper network (Mnih et al., 2015): three convolutions, one hidden layer, one Q-value
    per action. uint8 pixels are scaled to [0, 1] here, so replay can keep them as bytes."""

    def __init__(self, obs_shape: Sequence[int], obs_dtype, n_actions: int, cfg: NatureCNNConfig):
        super().__init__()
        self.obs_shape, self.activation, self.norm = tuple(obs_shape), str(cfg.activation), str(cfg.norm)
        (in_channels, height, width), self.channels_last = channels_first(obs_shape)
        self.add_channel_axis = len(obs_shape) == 2
        self.scale = 1 / 255 if np.dtype(obs_dtype) == np.uint8 else 1.0
        layers: List[nn.Module] = []
        channels = in_channels
        for out_channels, kernel, stride in zip(cfg.channels, cfg.kernel_sizes, cfg.strides):
            layers += [nn.Conv2d(channels, out_channels, kernel, stride), *norm_layer(cfg.norm, out_channels, True),
                       ACTIVATIONS[cfg.activation]()]
            channels = out_channels
        self.conv = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            features = self.conv(torch.zeros(1, in_channels, height, width))
        self.torso = nn.Sequential(nn.Linear(features.shape[1], cfg.hidden_size), *norm_layer(cfg.norm, cfg.hidden_size),
                                   ACTIVATIONS[cfg.activation]())
        self.head = (DuelingHeads(cfg.hidden_size, n_actions, 0, cfg.activation) if cfg.dueling
                     else nn.Linear(cfg.hidden_size, n_actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.add_channel_axis:
            obs = obs.unsqueeze(1)
        elif self.channels_last:
            obs = obs.permute(0, 3, 1, 2)
        return self.head(self.torso(self.conv(obs * self.scale)))


def _cnn(cfg: NatureCNNConfig, obs_shape: Tuple[int, ...], obs_dtype, n_actions: int) -> nn.Module:
    if not is_image(obs_shape, obs_dtype):
        raise ConfigError(f"network={cfg.name} needs image observations, this env's are of shape "
                          f"{tuple(obs_shape)}; use network=mlp (or the default network=auto)")
    if min(convolution_output(cfg, obs_shape)) < 1:
        raise ConfigError(f"network={cfg.name}'s convolutions do not fit this env's {tuple(obs_shape)} images; "
                          "use network=auto (a small CNN for small images), smaller network.kernel_sizes/"
                          "strides, or network=mlp")
    return NatureCNN(obs_shape, obs_dtype, n_actions, cfg)


def _mlp(cfg: MLPConfig, obs_shape: Tuple[int, ...], obs_dtype, n_actions: int) -> nn.Module:
    return MLPQNetwork(int(np.prod(obs_shape)), n_actions, cfg.hidden_sizes, cfg.activation, cfg.norm)


def _dueling(cfg: DuelingConfig, obs_shape: Tuple[int, ...], obs_dtype, n_actions: int) -> nn.Module:
    return DuelingQNetwork(int(np.prod(obs_shape)), n_actions, cfg.hidden_sizes, cfg.activation, cfg.head_hidden_size,
                           cfg.norm)


LARGE_MLP = 20_000_000  # parameters: far past any vector task's needs, and slow on a CPU


def _auto(cfg: AutoNetworkConfig, obs_shape: Tuple[int, ...], obs_dtype, n_actions: int) -> nn.Module:
    """An MLP for vectors; for images the Nature CNN, or a smaller one for images too small for it."""
    if not is_image(obs_shape, obs_dtype):
        sizes = [int(np.prod(obs_shape)), *cfg.hidden_sizes, n_actions]
        weights = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        if weights > LARGE_MLP:
            logging.getLogger("dqn_cli").warning(
                f"network=auto: observations of shape {tuple(obs_shape)} ({sizes[0]:,} values, not an image it can "
                f"convolve) make an MLP of {weights:,} parameters; flatten or downsample them in the env, or choose "
                "network=nature_cnn for images")
        return _mlp(cfg, obs_shape, obs_dtype, n_actions)
    cnn = NatureCNNConfig(activation=cfg.activation, norm=cfg.norm)
    if min(convolution_output(cnn, obs_shape)) < 1:
        cnn = replace(small_image_cnn(cfg.activation), norm=cfg.norm)
    return _cnn(cnn, obs_shape, obs_dtype, n_actions)


# network config name -> builder(cfg, obs_shape, obs_dtype, n_actions); docs/extending.md adds one
NETWORKS: Dict[str, Callable[..., nn.Module]] = {"auto": _auto, "mlp": _mlp, "dueling": _dueling,
                                                  "nature_cnn": _cnn, "minatar_cnn": _cnn}


def build_q_network(cfg, obs_shape: Sequence[int], obs_dtype, n_actions: int) -> nn.Module:
    """The Q-network a `network` config describes (NETWORKS[cfg.name])."""
    return NETWORKS[cfg.name](cfg, tuple(obs_shape), obs_dtype, n_actions)


def is_convolutional(network: nn.Module) -> bool:
    """Whether a network convolves: such networks gain from a GPU and from several CPU threads."""
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in network.modules())
