"""Closed choices as Enums, and the range-check helpers the schemas call from `__post_init__`.

The choice names live here, not in the modules that implement them, so the config (and every help
page built from it) loads without torch. Each implementation keeps a table keyed by these names
(losses in learners/update.py, activations in networks.py); a test checks the two agree."""

from __future__ import annotations

import dataclasses
import math
from enum import Enum
from typing import Any

from dqn_cli.errors import ConfigError

LOSS_NAMES = ("huber", "mse")
ACTIVATION_NAMES = ("relu", "tanh", "elu", "gelu", "silu")
NORM_NAMES = ("none", "layer")
# auto: a bar on a terminal, log lines otherwise
PROGRESS_MODES = ("auto", "bar", "lines", "off")

class Choice(str, Enum):
    """A closed choice whose members are the names of the implementations: compares, hashes and
    prints as its name, so code below the config can treat it as a string."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


Loss = Choice("Loss", {name: name for name in LOSS_NAMES})
Activation = Choice("Activation", {name: name for name in ACTIVATION_NAMES})
ProgressMode = Choice("ProgressMode", {name: name for name in PROGRESS_MODES})
Norm = Choice("Norm", {name: name for name in NORM_NAMES})
# What a schedule counts: env steps (summed over parallel envs) or finished episodes (each env's own).
Unit = Choice("Unit", {"step": "step", "episode": "episode"})
DEVICES = ("auto", "cpu", "cuda")
# How Python training envs step side by side: in this process, or one subprocess each.
Vectorization = Choice("Vectorization", {"sync": "sync", "async": "async"})
# What makes and steps the training envs: Gymnasium, or EnvPool's C++ pool (the Atari games).
EnvBackend = Choice("EnvBackend", {"gymnasium": "gymnasium", "envpool": "envpool"})


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is out of range; allowed: {allowed}")


def require_finite_floats(config: Any, prefix: str = "") -> None:
    """Every float of a config and of the configs inside it is a real number. NaN compares false with
    everything and infinity overflows: either would pass the range checks and fail later, far from
    the key that caused it."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            require_finite_floats(value, f"{prefix}{field.name}.")
        elif any(isinstance(v, float) and not math.isfinite(v) for v in (value if isinstance(value, (list, tuple))
                                                                             else [value])):
            raise ConfigError(f"{prefix}{field.name}={value!r} is not a finite number; give a real value")


def require_no_blank_strings(config: Any, prefix: str = "") -> None:
    """No text setting of a config (or of the configs inside it) is empty: `tracker.project=` would
    otherwise quietly mean the default, as null does."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            require_no_blank_strings(value, f"{prefix}{field.name}.")
        elif isinstance(value, str) and not isinstance(value, Enum) and not value.strip():
            raise ConfigError(f"{prefix}{field.name}=: needs a value; give one, or leave it out for the default")


def require_positive(owner: Any, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        require(value > 0, f"{prefix}{name}", value, "an integer > 0" if isinstance(value, int) else "a float > 0")


def require_null_or_positive(owner: Any, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(owner, name)
        require(value is None or value > 0, f"{prefix}{name}", value, "null or > 0")

CheckpointName = Choice("CheckpointName", {"best": "best", "last": "last"})
