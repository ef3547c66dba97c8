"""Typed configuration: one dataclass per config-group option, plus the top-level TrainConfig.

The YAML files under conf/ extend these schemas (Hydra's "schema" pattern), so a misspelled key
or a value of the wrong type is refused while composing. `validate` adds the range checks a
type cannot express. Below cli.py, code only ever sees these dataclasses.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

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


@dataclass
class EnvConfig:
    id: str = "CartPole-v1"
    """Gymnasium environment id, e.g. CartPole-v1."""
    num_envs: int = 1
    """Parallel training environments (a synchronous vector env); one transition per env per step."""
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


# ---------------------------------------------------------------------------------------------
# network


@dataclass
class MLPConfig:
    name: str = "mlp"
    hidden_sizes: List[int] = field(default_factory=lambda: [128, 128])
    """Width of each hidden layer."""
    activation: str = "relu"
    """One of: relu, tanh, elu, gelu, silu."""


@dataclass
class DuelingConfig(MLPConfig):
    name: str = "dueling"
    head_hidden_size: int = 0
    """Hidden width of the value and advantage heads; 0 makes each head one linear layer."""


@dataclass
class AutoNetworkConfig(MLPConfig):
    """The default: an MLP (these widths) for vector observations, nature_cnn for images."""
    name: str = "auto"


@dataclass
class NatureCNNConfig:
    name: str = "nature_cnn"
    channels: List[int] = field(default_factory=lambda: [32, 64, 64])
    """Output channels of each convolution."""
    kernel_sizes: List[int] = field(default_factory=lambda: [8, 4, 3])
    strides: List[int] = field(default_factory=lambda: [4, 2, 1])
    hidden_size: int = 512
    """Width of the fully connected layer after the convolutions."""
    activation: str = "relu"
    """One of: relu, tanh, elu, gelu, silu."""
    dueling: bool = False
    """Dueling value and advantage heads on the convolutional torso."""


# ---------------------------------------------------------------------------------------------
# buffer


@dataclass
class UniformBufferConfig:
    name: str = "uniform"
    capacity: int = 100_000
    """Transitions kept; the oldest are overwritten first."""
    n_step: int = 1
    """Store n-step returns (bootstrapping with gamma^n); 1 is plain one-step DQN."""


@dataclass
class PrioritizedBufferConfig(UniformBufferConfig):
    name: str = "prioritized"
    alpha: float = 0.6
    """How much priorities count: P(i) ~ priority^alpha (0 = uniform)."""
    beta_start: float = 0.4
    """Importance-sampling exponent at the start; annealed linearly to 1 by the end of training."""
    eps: float = 1e-6
    """Added to |TD error| so no transition's priority is zero."""


# ---------------------------------------------------------------------------------------------
# target


@dataclass
class HardTargetConfig:
    name: str = "hard"
    interval: int = 250
    """Copy the online weights into the target net every `interval` env steps."""


@dataclass
class SoftTargetConfig:
    name: str = "soft"
    tau: float = 0.005
    """Polyak factor: target <- tau * online + (1 - tau) * target."""
    interval: int = 1
    """Apply the polyak update every `interval` env steps."""


# ---------------------------------------------------------------------------------------------
# optimizer


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3
    """Learning rate."""
    weight_decay: float = 0.0
    max_grad_norm: Optional[float] = None
    """Clip the global gradient norm to this value (None: no clipping)."""
    max_grad_value: Optional[float] = None
    """Clip every gradient element to [-v, v] (None: no clipping)."""


@dataclass
class AdamConfig(OptimizerConfig):
    name: str = "adam"
    lr: float = 2.5e-3
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    amsgrad: bool = False


@dataclass
class AdamWConfig(AdamConfig):
    name: str = "adamw"
    weight_decay: float = 0.01


@dataclass
class RMSpropConfig(OptimizerConfig):
    name: str = "rmsprop"
    alpha: float = 0.99
    eps: float = 1e-8
    momentum: float = 0.0
    centered: bool = False


@dataclass
class SGDConfig(OptimizerConfig):
    name: str = "sgd"
    momentum: float = 0.0
    nesterov: bool = False


# ---------------------------------------------------------------------------------------------
# exploration


@dataclass
class LinearExplorationConfig:
    name: str = "linear"
    start: float = 1.0
    end: float = 0.05
    fraction: float = 0.1
    """Anneal over this fraction of total_steps ..."""
    steps: Optional[int] = None
    """... or over this many env steps, if set."""


@dataclass
class ExponentialExplorationConfig:
    name: str = "exponential"
    start: float = 0.9
    end: float = 0.05
    decay: float = 1000.0
    """epsilon = end + (start - end) * exp(-step / decay)."""


@dataclass
class ConstantExplorationConfig:
    name: str = "constant"
    epsilon: float = 0.1


# ---------------------------------------------------------------------------------------------
# top level


@dataclass
class EvalConfig:
    interval: int = 2_500
    """Greedy evaluation every this many env steps (0: only the final evaluation)."""
    episodes: int = 10
    """Episodes per periodic evaluation; the best mean picks checkpoints/best.pt."""
    final_episodes: int = 100
    """Episodes of the final evaluation of best.pt and last.pt."""


@dataclass
class CheckpointConfig:
    interval: Optional[int] = None
    """Write a resumable checkpoint every this many env steps (None: at each periodic evaluation)."""
    keep: int = 3
    """Periodic checkpoints (checkpoints/step_*.pt) to keep; older ones are deleted."""
    save_replay: bool = True
    """Save the replay buffer beside each periodic checkpoint (off: resume starts with an empty buffer)."""


@dataclass
class LogConfig:
    train_interval: int = 1_000
    """Write TD loss, mean Q, epsilon and steps/s to TensorBoard every this many env steps."""
    console_interval_s: float = 10.0
    """Seconds between plain log lines when stderr is not a terminal."""
    progress: str = "auto"
    """auto (a bar on a terminal, log lines otherwise) | bar | lines | off."""


@dataclass
class TrainConfig:
    env: Any = None
    network: Any = None
    buffer: Any = None
    target: Any = None
    optimizer: Any = None
    exploration: Any = None
    seed: int = 0
    """Drives every random number generator; train and eval envs get derived seeds."""
    total_steps: int = 40_000
    """Environment steps to train for (summed over parallel envs)."""
    gamma: float = 0.99
    """Discount factor, 0 <= gamma <= 1."""
    loss: str = "huber"
    """huber | mse."""
    double_q: bool = False
    """Double DQN: the online net picks the next action, the target net values it."""
    batch_size: int = 64
    learning_starts: int = 1_000
    """Env steps of uniformly random actions before learning begins."""
    train_freq: int = 4
    """Run an update every this many env steps ..."""
    gradient_steps: int = 1
    """... of this many gradient steps."""
    device: str = "auto"
    """auto (a GPU if available and the network is a CNN; MLPs run faster on the CPU) | cpu | cuda |
    cuda:N | auto:N (GPU N, for a CNN)."""
    torch_threads: int = 0
    """Intra-op threads for torch; 0 picks 1 for small MLPs, the core count otherwise."""
    resume: Optional[str] = None
    """A run directory to continue (dqn-train resume=outputs/runs/<run>)."""
    compile: bool = False
    """torch.compile the learner's forward passes (costs compile time up front; see README)."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)


# Schema classes per config group, keyed by the `name` each option carries.
GROUP_SCHEMAS: Dict[str, Dict[str, type]] = {
    "network": {"auto": AutoNetworkConfig, "mlp": MLPConfig, "dueling": DuelingConfig,
                "nature_cnn": NatureCNNConfig},
    "buffer": {"uniform": UniformBufferConfig, "prioritized": PrioritizedBufferConfig},
    "target": {"hard": HardTargetConfig, "soft": SoftTargetConfig},
    "optimizer": {
        "adam": AdamConfig,
        "adamw": AdamWConfig,
        "rmsprop": RMSpropConfig,
        "sgd": SGDConfig,
    },
    "exploration": {
        "linear": LinearExplorationConfig,
        "exponential": ExponentialExplorationConfig,
        "constant": ConstantExplorationConfig,
    },
}

ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "silu")
LOSSES = ("huber", "mse")
DEVICES = ("auto", "cpu", "cuda")
PROGRESS_MODES = ("auto", "bar", "lines", "off")


def _run_dir(resume: Optional[str], fresh: str) -> str:
    """Hydra's run dir: the resumed run's own dir, which must exist (checked before Hydra creates it)."""
    if not resume:
        return fresh
    if not os.path.isdir(resume):
        raise ConfigError(f"resume={resume}: no such run dir; pass the dir of an earlier run, e.g. "
                          "resume=outputs/runs/<run>")
    return resume


def register_schemas() -> None:
    """Store every schema in Hydra's ConfigStore (the YAML options extend them by name)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    # resume=<dir> runs in that dir; its own .hydra/ (the original overrides) is kept untouched.
    OmegaConf.register_new_resolver("dqn_run_dir", _run_dir, replace=True)
    OmegaConf.register_new_resolver("dqn_hydra_subdir", lambda resume, now: f".hydra-resume/{now}" if resume
                                    else ".hydra", replace=True)

    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    store.store(group="env", name="env_schema", node=EnvConfig)
    for group, options in GROUP_SCHEMAS.items():
        for option, schema in options.items():
            store.store(group=group, name=f"{option}_schema", node=schema)


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is out of range; allowed: {allowed}")


def _require_choice(key: str, value: Any, choices: tuple) -> None:
    _require(value in choices, key, value, " | ".join(choices))


def validate(cfg: TrainConfig) -> TrainConfig:
    """Range checks that types cannot express; raises ConfigError naming the key."""
    _require(cfg.total_steps > 0, "total_steps", cfg.total_steps, "an integer > 0")
    _require(0.0 <= cfg.gamma <= 1.0, "gamma", cfg.gamma, "0 <= gamma <= 1")
    _require_choice("loss", cfg.loss, LOSSES)
    _require(cfg.device in DEVICES or re.fullmatch(r"(cuda|auto):\d+", cfg.device) is not None, "device",
             cfg.device, " | ".join(DEVICES) + " | cuda:N | auto:N")
    _require(cfg.batch_size > 0, "batch_size", cfg.batch_size, "an integer > 0")
    _require(cfg.learning_starts >= 0, "learning_starts", cfg.learning_starts, "an integer >= 0")
    _require(cfg.train_freq > 0, "train_freq", cfg.train_freq, "an integer > 0")
    _require(cfg.gradient_steps > 0, "gradient_steps", cfg.gradient_steps, "an integer > 0")
    _require(cfg.torch_threads >= 0, "torch_threads", cfg.torch_threads, "0 (auto) or more")

    env = cfg.env
    if not env.id:
        raise ConfigError("env.id must be set to a registered Gymnasium id, e.g. env=gym env.id=Acrobot-v1")
    _require(env.num_envs > 0, "env.num_envs", env.num_envs, "an integer > 0")
    _require(env.reward_clip is None or env.reward_clip > 0, "env.reward_clip", env.reward_clip, "null or > 0")
    _require(
        env.max_episode_steps is None or env.max_episode_steps > 0,
        "env.max_episode_steps", env.max_episode_steps, "null or an integer > 0",
    )

    _require(env.frame_stack >= 1, "env.frame_stack", env.frame_stack, "an integer >= 1")
    if env.atari is not None:
        _require(env.atari.noop_max >= 0, "env.atari.noop_max", env.atari.noop_max, "an integer >= 0")
        _require(env.atari.frame_skip >= 1, "env.atari.frame_skip", env.atari.frame_skip, "an integer >= 1")
        _require(env.atari.screen_size >= 36, "env.atari.screen_size", env.atari.screen_size,
                 "an integer >= 36 (the Nature CNN needs 36 pixels)")

    net = cfg.network
    _require_choice("network.activation", net.activation, ACTIVATIONS)
    if isinstance(net, NatureCNNConfig):
        layers = (list(net.channels), list(net.kernel_sizes), list(net.strides))
        _require(len(layers[0]) > 0 and len(set(map(len, layers))) == 1 and min(layers[0] + layers[1] + layers[2]) > 0,
                 "network.channels/kernel_sizes/strides", layers, "three equally long lists of positive integers")
        _require(net.hidden_size > 0, "network.hidden_size", net.hidden_size, "an integer > 0")
    else:
        _require(len(net.hidden_sizes) > 0 and min(net.hidden_sizes) > 0,
                 "network.hidden_sizes", list(net.hidden_sizes), "a non-empty list of positive widths")

    _require(cfg.buffer.capacity > 0, "buffer.capacity", cfg.buffer.capacity, "an integer > 0")
    _require(cfg.buffer.n_step >= 1, "buffer.n_step", cfg.buffer.n_step, "an integer >= 1")
    _require(cfg.buffer.capacity >= cfg.batch_size, "buffer.capacity", cfg.buffer.capacity,
             f">= batch_size ({cfg.batch_size})")

    if isinstance(cfg.buffer, PrioritizedBufferConfig):
        _require(0.0 <= cfg.buffer.alpha <= 1.0, "buffer.alpha", cfg.buffer.alpha, "0 <= alpha <= 1")
        _require(0.0 <= cfg.buffer.beta_start <= 1.0, "buffer.beta_start", cfg.buffer.beta_start, "0 <= beta <= 1")
        _require(cfg.buffer.eps > 0, "buffer.eps", cfg.buffer.eps, "a float > 0")

    tgt = cfg.target
    _require(tgt.interval > 0, "target.interval", tgt.interval, "an integer > 0")
    if isinstance(tgt, SoftTargetConfig):
        _require(0.0 < tgt.tau <= 1.0, "target.tau", tgt.tau, "0 < tau <= 1")

    opt = cfg.optimizer
    _require(opt.lr > 0, "optimizer.lr", opt.lr, "a float > 0")
    _require(opt.weight_decay >= 0, "optimizer.weight_decay", opt.weight_decay, ">= 0")
    for key in ("max_grad_norm", "max_grad_value"):
        value = getattr(opt, key)
        _require(value is None or value > 0, f"optimizer.{key}", value, "null or > 0")
    if isinstance(opt, AdamConfig):
        _require(len(opt.betas) == 2 and all(0 <= b < 1 for b in opt.betas),
                 "optimizer.betas", list(opt.betas), "two floats in [0, 1)")

    exp = cfg.exploration
    for key in ("start", "end", "epsilon"):
        if hasattr(exp, key):
            value = getattr(exp, key)
            _require(0.0 <= value <= 1.0, f"exploration.{key}", value, "0 <= value <= 1")
    if isinstance(exp, LinearExplorationConfig):
        _require(0.0 < exp.fraction <= 1.0, "exploration.fraction", exp.fraction, "0 < fraction <= 1")
        _require(exp.steps is None or exp.steps > 0, "exploration.steps", exp.steps, "null or > 0")
    if isinstance(exp, ExponentialExplorationConfig):
        _require(exp.decay > 0, "exploration.decay", exp.decay, "a float > 0")

    _require(cfg.eval.interval >= 0, "eval.interval", cfg.eval.interval, "an integer >= 0")
    _require(cfg.eval.episodes > 0, "eval.episodes", cfg.eval.episodes, "an integer > 0")
    _require(cfg.eval.final_episodes > 0, "eval.final_episodes", cfg.eval.final_episodes, "an integer > 0")
    _require(cfg.checkpoint.keep > 0, "checkpoint.keep", cfg.checkpoint.keep, "an integer > 0")
    _require(cfg.checkpoint.interval is None or cfg.checkpoint.interval > 0,
             "checkpoint.interval", cfg.checkpoint.interval, "null or an integer > 0")
    _require(cfg.log.train_interval > 0, "log.train_interval", cfg.log.train_interval, "an integer > 0")
    _require_choice("log.progress", cfg.log.progress, PROGRESS_MODES)
    return cfg


def to_dict(cfg: TrainConfig) -> Dict[str, Any]:
    """Plain nested dict (for checkpoints, summary.json and TensorBoard)."""
    return dataclasses.asdict(cfg)


def from_dict(data: Dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from `to_dict` output (as stored in a checkpoint)."""
    data = dict(data)
    env = dict(data.pop("env"))
    env["atari"] = AtariConfig(**env["atari"]) if env.get("atari") else None
    groups: Dict[str, Any] = {"env": EnvConfig(**env)}
    for group, options in GROUP_SCHEMAS.items():
        values = dict(data.pop(group))
        groups[group] = options[values["name"]](**values)
    nested = {
        "eval": EvalConfig(**data.pop("eval")),
        "checkpoint": CheckpointConfig(**data.pop("checkpoint")),
        "log": LogConfig(**data.pop("log")),
    }
    return TrainConfig(**groups, **nested, **data)


def flatten(data: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """{'optimizer': {'lr': 1e-3}} -> {'optimizer.lr': 1e-3}."""
    flat: Dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


# What a resumed run may not change: the shapes its weights, replay and env states were made for.
RESUME_FIXED_PREFIXES = ("network.", "env.id", "env.num_envs", "env.make_kwargs", "env.frame_stack", "env.atari",
                         "buffer.capacity")


def check_resume_compatible(saved: Dict[str, Any], cfg: TrainConfig) -> None:
    old, new = flatten(saved), flatten(to_dict(cfg))
    for key in sorted(set(old) | set(new)):
        if key.startswith(RESUME_FIXED_PREFIXES) and old.get(key) != new.get(key):
            raise ConfigError(f"resume: {key} was {old.get(key)!r} in the run being resumed, now {new.get(key)!r}; "
                              "a resumed run keeps its network, env and replay size (start a new run instead)")
