"""Typed configuration: one dataclass per config-group option, plus the top-level TrainConfig.

The YAML files under conf/ extend these schemas (Hydra's "schema" pattern), so a misspelled key,
a value of the wrong type or an unknown choice is refused while composing. Each range check sits
next to its field, in `__post_init__`, so a config that exists is a valid one. Below compose.py,
code only ever sees these dataclasses. Nothing here imports torch.
"""

from __future__ import annotations

from typing import Any, Dict

from omegaconf import OmegaConf

from dqn_cli.config.choices import DEVICES, Activation, CheckpointName, Choice, Loss, ProgressMode, require
from dqn_cli.config.groups import (
    AtariConfig,
    AutoNetworkConfig,
    BufferConfig,
    ConstantExplorationConfig,
    DuelingConfig,
    EnvConfig,
    ExplorationConfig,
    ExponentialExplorationConfig,
    HardTargetConfig,
    LinearExplorationConfig,
    MLflowTrackerConfig,
    MLPConfig,
    NatureCNNConfig,
    NetworkConfig,
    PrioritizedBufferConfig,
    SoftTargetConfig,
    TargetConfig,
    TrackerConfig,
    UniformBufferConfig,
    WandbTrackerConfig,
)
from dqn_cli.config.learning import (
    AdamConfig,
    AdamWConfig,
    AlgorithmConfig,
    DQNConfig,
    OptimizerConfig,
    PQNConfig,
    RAdamConfig,
    RMSpropConfig,
    SGDConfig,
)
from dqn_cli.config.train import CheckpointConfig, EvalArgs, EvalConfig, LogConfig, TrainConfig
from dqn_cli.errors import ConfigError

__all__ = [
    "Activation", "AdamConfig", "AdamWConfig", "AlgorithmConfig", "DQNConfig", "PQNConfig", "RAdamConfig", "AtariConfig", "AutoNetworkConfig", "BufferConfig", "CheckpointConfig",
    "CheckpointName", "Choice", "ConstantExplorationConfig", "DEVICES", "DuelingConfig", "EnvConfig",
    "EvalArgs", "EvalConfig", "ExplorationConfig", "ExponentialExplorationConfig", "HardTargetConfig",
    "LinearExplorationConfig", "LogConfig", "Loss", "MLPConfig", "NatureCNNConfig", "NetworkConfig",
    "OptimizerConfig", "PrioritizedBufferConfig", "ProgressMode", "RMSpropConfig", "SGDConfig",
    "SoftTargetConfig", "TargetConfig", "TrainConfig", "UniformBufferConfig", "TrackerConfig",
    "MLflowTrackerConfig", "WandbTrackerConfig", "require", "GROUP_SCHEMAS", "check_resume_compatible",
    "flatten", "from_dict", "to_dict",
]

# Schema classes per config group, keyed by the `name` each option carries.
GROUP_SCHEMAS: Dict[str, Dict[str, type]] = {
    "network": {"auto": AutoNetworkConfig, "mlp": MLPConfig, "dueling": DuelingConfig,
                "nature_cnn": NatureCNNConfig, "minatar_cnn": NatureCNNConfig},
    "buffer": {"uniform": UniformBufferConfig, "prioritized": PrioritizedBufferConfig},
    "target": {"hard": HardTargetConfig, "soft": SoftTargetConfig},
    "optimizer": {"adam": AdamConfig, "adamw": AdamWConfig, "radam": RAdamConfig, "rmsprop": RMSpropConfig,
                  "sgd": SGDConfig},
    "exploration": {"linear": LinearExplorationConfig, "exponential": ExponentialExplorationConfig,
                    "constant": ConstantExplorationConfig},
    "tracker": {"none": TrackerConfig, "mlflow": MLflowTrackerConfig, "wandb": WandbTrackerConfig},
    "algorithm": {"dqn": DQNConfig, "pqn": PQNConfig},
}


def to_dict(cfg: TrainConfig) -> Dict[str, Any]:
    """Plain nested dict, choices as strings (for checkpoints, summary.json and TensorBoard)."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)


def from_dict(data: Dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from `to_dict` output (as stored in a checkpoint): each group's schema
    is chosen by its `name`, then OmegaConf merges the values in, with the usual type checks."""
    # a group missing from an older checkpoint (tracker) takes its default option
    groups = {group: OmegaConf.structured(options[data.get(group, {}).get("name", next(iter(options)))])
              for group, options in GROUP_SCHEMAS.items()}
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrainConfig), groups, data))


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


# What a resumed run may not change, and why: the checkpoint's weights, optimizer state, replay and
# env states were made for these.
RESUME_FIXED = {"seed": "its random streams continue from the checkpoint",
                "algorithm.name": "the checkpoint holds that algorithm's state",
                "algorithm.rollout_steps": "the saved rollout has that length",
                "network": "the saved weights have that network's shapes",
                "optimizer.name": "the checkpoint holds that optimizer's state, which another optimizer cannot take "
                                  "(its values, e.g. optimizer.lr, may change)",
                "buffer.name": "the saved replay is that buffer's (its priorities, or none)",
                "buffer.capacity": "the saved replay has that size",
                **{key: "the saved env states are that env's" for key in
                   ("env.id", "env.num_envs", "env.make_kwargs", "env.frame_stack", "env.atari")}}


def check_resume_compatible(saved: Dict[str, Any], cfg: TrainConfig) -> None:
    """Refuse, before anything is written, a change that the checkpoint cannot carry. What names a
    thing (network.name, env.id) is named before the values that come with it."""
    old, new = flatten(saved), flatten(to_dict(cfg))
    names_first = lambda key: (not (key.endswith(".name") or key == "env.id"), key)  # noqa: E731
    for key in sorted(set(old) | set(new), key=names_first):
        fixed = next((prefix for prefix in RESUME_FIXED if key == prefix or key.startswith(prefix + ".")), None)
        if fixed is not None and old.get(key) != new.get(key):
            raise ConfigError(f"resume: {key} was {old.get(key)!r} in the run being resumed, now {new.get(key)!r}: "
                              f"{RESUME_FIXED[fixed]}; keep it, or start a new run")
