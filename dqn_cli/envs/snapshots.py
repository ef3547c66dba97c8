"""Env-state capture for exact resume: each training env's simulator state, RNG and time-limit
counter as plain data, and back."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from dqn_cli.envs.batched import BatchedTrainingEnv
from dqn_cli.envs.envpool_atari import EnvPoolAtari


_PLAIN = (bool, int, float, str, type(None), np.ndarray, np.generic)
_DESCRIPTIVE = (gym.Space, np.random.Generator, gym.envs.registration.EnvSpec, dict)


def _plain_attributes(obj) -> dict:
    """An object's attributes that are plain data (numbers, strings, arrays): its restorable state."""
    return {k: v for k, v in vars(obj).items()
            if isinstance(v, _PLAIN) or (isinstance(v, tuple) and all(isinstance(x, _PLAIN) for x in v))}


_UNRESTORABLE = object()
_OBJECT, _RANDOM_STATE = "__object__", "__random_state__"  # tags of captured objects and legacy numpy RNGs
_MAX_DEPTH = 4


def _capture(value: Any, depth: int = 0) -> Any:
    """`value` as plain data that restores it, or _UNRESTORABLE. Plain data, lists and dicts of it,
    numpy's legacy RandomState and pure-Python objects made of those (MinAtar's games) qualify;
    native objects (Box2D's world) do not."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)) or (isinstance(value, dict) and all(isinstance(k, str) for k in value)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        captured = {k: _capture(v, depth) for k, v in items}
        if any(v is _UNRESTORABLE for v in captured.values()):
            return _UNRESTORABLE
        return captured if isinstance(value, dict) else type(value)(captured.values())
    if isinstance(value, np.random.RandomState):
        name, keys, position, has_gauss, cached = value.get_state()
        return (_RANDOM_STATE, name, keys.astype(np.int64), position, has_gauss, cached)
    package = str(getattr(type(value), "__module__", "builtins")).split(".")[0]  # native types may have none
    if depth < _MAX_DEPTH and package not in ("builtins", "gymnasium") and hasattr(value, "__dict__") \
            and not callable(value):
        attributes = _capture(dict(vars(value)), depth + 1)
        return _UNRESTORABLE if attributes is _UNRESTORABLE else (_OBJECT, attributes)
    return _UNRESTORABLE


def _is_tagged(state: Any, tag: str) -> bool:
    return isinstance(state, tuple) and len(state) > 1 and state[0] == tag


def _restore(target: Any, attributes: dict) -> None:
    """Write captured attributes back into `target`, restoring nested objects and RNGs in place."""
    for name, state in attributes.items():
        if _is_tagged(state, _OBJECT):
            _restore(getattr(target, name), state[1])
        elif _is_tagged(state, _RANDOM_STATE):
            _, generator, keys, position, has_gauss, cached = state
            keys = np.asarray(keys).astype(np.uint32)
            getattr(target, name).set_state((generator, keys, position, has_gauss, cached))
        else:
            setattr(target, name, state)


def _out_of_reach(envs: gym.vector.VectorEnv) -> bool:
    """Envs whose state lives in worker processes or in EnvPool's C++ pool, where no checkpoint reaches."""
    return isinstance(envs, (gym.vector.AsyncVectorEnv, EnvPoolAtari))


def capture_env_states(envs: gym.vector.VectorEnv) -> list:
    """Per training env: its simulator's plain-data state, its RNG and its time-limit counter.

    Classic-control envs keep their whole state in plain attributes, and MinAtar's in pure-Python
    objects, so a resumed run continues their episodes exactly; envs whose state lives in native
    objects (Box2D) are marked `exact: False` and start a new episode on resume.
    """
    if _out_of_reach(envs):
        return [{"exact": False} for _ in range(envs.num_envs)]
    if isinstance(envs, BatchedTrainingEnv):
        envs.write_to_singles()
    states = []
    for env in envs.envs:
        layers, layer = [], env
        while isinstance(layer, gym.Wrapper):
            layers.append(_plain_attributes(layer))
            layer = layer.env
        # Spaces, the RNG, the spec and metadata describe the env; everything else is its state.
        core = {k: _capture(v) for k, v in vars(layer).items() if not isinstance(v, _DESCRIPTIVE)}
        exact = all(v is not _UNRESTORABLE for v in core.values())
        states.append({"wrappers": layers, "core": {k: v for k, v in core.items() if v is not _UNRESTORABLE},
                       "rng": layer.np_random.bit_generator.state, "exact": exact})
    return states


def restore_env_states(envs: gym.vector.VectorEnv, states: list) -> list:
    """Put captured states back; returns the indices of envs that could not be restored exactly."""
    if _out_of_reach(envs):
        return list(range(envs.num_envs))
    inexact = []
    for index, (env, state) in enumerate(zip(envs.envs, states)):
        if not state["exact"]:
            inexact.append(index)
            continue
        layer = env
        for attributes in state["wrappers"]:
            vars(layer).update(attributes)
            layer = layer.env
        _restore(layer, state["core"])
        layer.np_random.bit_generator.state = state["rng"]
    if isinstance(envs, BatchedTrainingEnv):
        envs.read_from_singles()
    return inexact


def restart_episodes(envs: gym.vector.VectorEnv, indices: list, seeds: list) -> np.ndarray:
    """New episodes, seeded `seeds`, in the envs `indices` that a checkpoint could not restore;
    their first observations. Async workers and EnvPool's envs all start over together (they are all
    inexact)."""
    if _out_of_reach(envs):
        observations, _ = envs.reset(seed=list(seeds))
        return observations.copy()
    return np.stack([envs.envs[i].reset(seed=s)[0] for i, s in zip(indices, seeds)])
