"""The schemas of the config groups: one dataclass per option (conf/<group>/<option>.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

from dqn_cli.config.choices import (Activation, EnvBackend, Norm, Unit, Vectorization, require,
                                    require_null_or_positive, require_positive)
from dqn_cli.errors import ConfigError


# ---------------------------------------------------------------------------------------------
# env


@dataclass
class AtariConfig:
    """The DQN-paper preprocessing of an ALE game (env=pong, env=breakout)."""
    noop_max: int = 30
    """At each reset, a random number (1..noop_max) of no-op steps, so episodes start differently."""
    frame_skip: int = 4
    """Repeat each action this many emulator frames; the observation max-pools the last two."""
    screen_size: int = 84
    """Frames are greyscaled and resized (area interpolation) to screen_size x screen_size."""
    episodic_life: bool = True
    """Training only: losing a life ends the episode for bootstrapping (the game goes on)."""
    fire_on_life_start: bool = True
    """Press FIRE after a reset and after each lost life, in games that need it to go on."""

    def __post_init__(self):
        require(self.noop_max >= 0, "env.atari.noop_max", self.noop_max, "an integer >= 0")
        require(self.frame_skip >= 1, "env.atari.frame_skip", self.frame_skip, "an integer >= 1")
        require(self.screen_size >= 36, "env.atari.screen_size", self.screen_size,
                "an integer >= 36 (the Nature CNN needs 36 pixels)")


# env.make_kwargs keys that mean the same to EnvPool as to gymnasium.make of an ALE game.
ENVPOOL_MAKE_KWARGS = ("repeat_action_probability", "full_action_space", "mode", "difficulty")
# ALE arguments the Atari preprocessing sets itself: a make_kwargs value would skip frames twice or
# hand it colour screens.
ALE_ARGUMENTS_OWNED = {"frameskip": "env.atari.frame_skip", "obs_type": "env.atari (it greyscales the screen)"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_ale_make_kwargs(make_kwargs: Dict[str, Any]) -> None:
    """The ALE arguments with a known type are checked here; ALE itself takes a probability of 2 or
    `full_action_space='maybe'` without a word. Whether a game has a mode is known when it is made."""
    for key, value in make_kwargs.items():
        if key in ALE_ARGUMENTS_OWNED:
            raise ConfigError(f"env.make_kwargs.{key} is set by the Atari preprocessing; use "
                              f"{ALE_ARGUMENTS_OWNED[key]} instead")
    checks = {"repeat_action_probability": (lambda v: _is_number(v) and 0 <= v <= 1, "a probability in [0, 1]"),
              "full_action_space": (lambda v: isinstance(v, bool), "true or false"),
              "mode": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
              "difficulty": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0")}
    for key, (ok, allowed) in checks.items():
        if key in make_kwargs:
            require(ok(make_kwargs[key]), f"env.make_kwargs.{key}", make_kwargs[key], allowed)


@dataclass
class EnvConfig:
    id: str = "CartPole-v1"
    """Gymnasium environment id, e.g. CartPole-v1."""
    num_envs: int = 1
    """Parallel training environments, one transition per env per step: Python envs side by side, or
    from 8 copies of CartPole one numpy batch that plays the same episodes (env=cartpole sets 16)."""
    vectorization: Vectorization = Vectorization.sync
    """How num_envs Python envs step: sync (one after another in this process) or async (a subprocess
    each, all at once: pays off for envs slow to step, such as Atari, on a machine with the cores)."""
    backend: EnvBackend = EnvBackend.gymnasium
    """What makes and steps the training envs: gymnasium, or envpool (the Atari games, in C++ threads;
    pip install "dqn-cli[envpool]"). Evaluation always plays the Gymnasium env."""
    reward_scale: float = 1.0
    """Training rewards are multiplied by this before they are stored (returns are logged raw)."""
    reward_clip: Optional[float] = None
    """If set, training rewards (after scaling) are clipped to [-reward_clip, reward_clip]."""
    max_episode_steps: Optional[int] = None
    """Override the env's time limit (truncation); None keeps the registered one."""
    make_kwargs: Dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for gymnasium.make."""
    solve_threshold: Optional[float] = None
    """Mean greedy return that counts as solving the env (reported, never used for training)."""
    import_module: Optional[str] = None
    """A module to import before making the env, so a third-party package registers its envs."""
    frame_stack: int = 1
    """Stack the last k observations (k > 1) along a new first axis; replay stores each frame once."""
    atari: Optional[AtariConfig] = None
    """The DQN-paper Atari preprocessing (set by env=pong / env=breakout); null for other envs."""

    def __post_init__(self):
        if not self.id:
            raise ConfigError("env.id must be set to a registered Gymnasium id, e.g. env=gym env.id=Acrobot-v1")
        require_positive(self, "env.", "num_envs", "reward_scale")  # 0 would train on no reward, < 0 on its opposite
        require_null_or_positive(self, "env.", "reward_clip", "max_episode_steps")
        require(self.frame_stack >= 1, "env.frame_stack", self.frame_stack, "an integer >= 1")
        if self.backend == EnvBackend.envpool and self.atari is None:
            raise ConfigError(f"env.backend=envpool steps the Atari games (env=pong, env=breakout), not env.id="
                              f"{self.id}; use env.backend=gymnasium")
        if self.atari is not None:
            _check_ale_make_kwargs(self.make_kwargs)
        if self.backend == EnvBackend.envpool:
            self._check_envpool_can_play()

    def _check_envpool_can_play(self) -> None:
        if self.atari.noop_max < 1:
            raise ConfigError(f"env.atari.noop_max={self.atari.noop_max} with env.backend=envpool: EnvPool plays at "
                              "least one no-op after each reset; use env.atari.noop_max>=1, or env.backend=gymnasium")
        unknown = sorted(set(self.make_kwargs) - set(ENVPOOL_MAKE_KWARGS))
        if unknown:
            raise ConfigError(f"env.make_kwargs.{unknown[0]} is a gymnasium.make argument that env.backend=envpool "
                              f"does not take; with envpool use {', '.join(ENVPOOL_MAKE_KWARGS)}")


# ---------------------------------------------------------------------------------------------
# network


@dataclass
class NetworkConfig:
    name: str = MISSING
    activation: Activation = Activation.relu
    """The nonlinearity after each hidden layer."""
    norm: Norm = Norm.none
    """none | layer: LayerNorm before each hidden activation (over channels after a convolution), as PQN's
    network has."""


def _check_hidden_sizes(hidden_sizes: List[int]) -> None:
    require(len(hidden_sizes) > 0 and min(hidden_sizes) > 0, "network.hidden_sizes", list(hidden_sizes),
            "a non-empty list of positive widths")


@dataclass
class MLPConfig(NetworkConfig):
    name: str = "mlp"
    hidden_sizes: List[int] = field(default_factory=lambda: [128, 128])
    """Width of each hidden layer."""

    def __post_init__(self):
        _check_hidden_sizes(self.hidden_sizes)


@dataclass
class DuelingConfig(MLPConfig):
    name: str = "dueling"
    head_hidden_size: int = 0
    """Hidden width of the value and advantage heads; 0 makes each head one linear layer."""

    def __post_init__(self):
        super().__post_init__()
        require(self.head_hidden_size >= 0, "network.head_hidden_size", self.head_hidden_size,
                "0 (one linear layer per head) or a positive width")


@dataclass
class AutoNetworkConfig(NetworkConfig):
    """The default: an MLP for vector observations, a CNN for images (nature_cnn, or a smaller one
    for images too small for it)."""
    name: str = "auto"
    hidden_sizes: List[int] = field(default_factory=lambda: [128, 128])
    """Width of each hidden layer of the MLP (vector observations)."""

    def __post_init__(self):
        _check_hidden_sizes(self.hidden_sizes)


@dataclass
class NatureCNNConfig(NetworkConfig):
    name: str = "nature_cnn"
    channels: List[int] = field(default_factory=lambda: [32, 64, 64])
    """Output channels of each convolution."""
    kernel_sizes: List[int] = field(default_factory=lambda: [8, 4, 3])
    """Square kernel size of each convolution."""
    strides: List[int] = field(default_factory=lambda: [4, 2, 1])
    """Stride of each convolution."""
    hidden_size: int = 512
    """Width of the fully connected layer after the convolutions."""
    dueling: bool = False
    """Dueling value and advantage heads on the convolutional torso."""

    def __post_init__(self):
        layers = (list(self.channels), list(self.kernel_sizes), list(self.strides))
        require(len(layers[0]) > 0 and len(set(map(len, layers))) == 1 and min(sum(layers, [])) > 0,
                "network.channels/kernel_sizes/strides", layers, "three equally long lists of positive integers")
        require_positive(self, "network.", "hidden_size")


# ---------------------------------------------------------------------------------------------
# buffer


@dataclass
class BufferConfig:
    name: str = MISSING
    capacity: int = 100_000
    """Transitions kept; the oldest are overwritten first."""
    n_step: int = 1
    """Store n-step returns (bootstrapping with gamma^n); 1 is plain one-step DQN."""

    def __post_init__(self):
        require_positive(self, "buffer.", "capacity", "n_step")


@dataclass
class UniformBufferConfig(BufferConfig):
    """Every stored transition equally likely to be sampled."""
    name: str = "uniform"


@dataclass
class PrioritizedBufferConfig(BufferConfig):
    name: str = "prioritized"
    alpha: float = 0.6
    """How much priorities count: P(i) ~ priority^alpha (0 = uniform)."""
    beta_start: float = 0.4
    """Importance-sampling exponent at the start; annealed linearly to 1 by the end of training."""
    eps: float = 1e-6
    """Added to |TD error| so no transition's priority is zero."""

    def __post_init__(self):
        super().__post_init__()
        require(0.0 <= self.alpha <= 1.0, "buffer.alpha", self.alpha, "0 <= alpha <= 1")
        require(0.0 <= self.beta_start <= 1.0, "buffer.beta_start", self.beta_start, "0 <= beta <= 1")
        require_positive(self, "buffer.", "eps")


# ---------------------------------------------------------------------------------------------
# target


@dataclass
class TargetConfig:
    name: str = MISSING
    interval: int = 1
    """Update the target net every `interval` env steps (or episodes, see interval_unit)."""
    interval_unit: Unit = Unit.step
    """step | episode: what target.interval counts (episode: finished episodes, over all envs)."""

    def __post_init__(self):
        require_positive(self, "target.", "interval")


@dataclass
class HardTargetConfig(TargetConfig):
    name: str = "hard"
    interval: int = 100
    """Copy the online weights into the target net every `interval` env steps (or episodes)."""


@dataclass
class SoftTargetConfig(TargetConfig):
    name: str = "soft"
    tau: float = 0.005
    """Polyak factor: target <- tau * online + (1 - tau) * target."""
    interval: int = 1
    """Apply the polyak update every `interval` env steps (or episodes)."""

    def __post_init__(self):
        super().__post_init__()
        require(0.0 < self.tau <= 1.0, "target.tau", self.tau, "0 < tau <= 1")


# ---------------------------------------------------------------------------------------------
# exploration


@dataclass
class ExplorationConfig:
    name: str = MISSING
    unit: Unit = Unit.step
    """step | episode: the schedule's clock (steps and decay then count finished episodes)."""

    def __post_init__(self):
        for key in ("start", "end", "epsilon"):
            if hasattr(self, key):
                value = getattr(self, key)
                require(0.0 <= value <= 1.0, f"exploration.{key}", value, "0 <= value <= 1")


@dataclass
class LinearExplorationConfig(ExplorationConfig):
    name: str = "linear"
    start: float = 1.0
    """Epsilon at step 0."""
    end: float = 0.05
    """Epsilon after the anneal."""
    fraction: float = 0.1
    """Anneal over this fraction of the budget (total_steps, or total_episodes with unit=episode) ..."""
    steps: Optional[int] = None
    """... or over this many env steps (episodes with unit=episode), if set."""

    def __post_init__(self):
        super().__post_init__()
        require(0.0 < self.fraction <= 1.0, "exploration.fraction", self.fraction, "0 < fraction <= 1")
        require_null_or_positive(self, "exploration.", "steps")


@dataclass
class ExponentialExplorationConfig(ExplorationConfig):
    name: str = "exponential"
    start: float = 0.9
    """Epsilon at step 0."""
    end: float = 0.05
    """Epsilon approached as steps grow."""
    decay: float = 1000.0
    """epsilon = end + (start - end) * exp(-step / decay)."""

    def __post_init__(self):
        super().__post_init__()
        require_positive(self, "exploration.", "decay")


@dataclass
class ConstantExplorationConfig(ExplorationConfig):
    name: str = "constant"
    epsilon: float = 0.1
    """Epsilon at every step."""


# ---------------------------------------------------------------------------------------------
# tracker


@dataclass
class TrackerConfig:
    """No tracker besides TensorBoard (which is always on): tracker=none."""
    name: str = "none"


@dataclass
class MLflowTrackerConfig(TrackerConfig):
    name: str = "mlflow"
    tracking_uri: Optional[str] = None
    """Where MLflow records runs (sqlite:///..., http://...); null: $MLFLOW_TRACKING_URI, else ./mlflow.db."""
    experiment: str = "dqn-cli"
    """The MLflow experiment the runs go to."""


@dataclass
class WandbTrackerConfig(TrackerConfig):
    name: str = "wandb"
    project: Optional[str] = None
    """The W&B project the runs go to; null: $WANDB_PROJECT, else dqn-cli."""
    entity: Optional[str] = None
    """The W&B team or user; null: $WANDB_ENTITY, else your default entity."""
    mode: Optional[str] = None
    """online | offline | disabled; null: $WANDB_MODE, else online."""

    def __post_init__(self):
        require(self.mode in (None, "online", "offline", "disabled"), "tracker.mode", self.mode,
                "null | online | offline | disabled")
