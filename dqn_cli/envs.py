"""Gymnasium environments: training vector env, evaluation envs, checks and derived seeds."""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import os
import signal
import sys
import warnings
from typing import Any, Optional

import gymnasium as gym
import numpy as np

from dqn_cli.atari import ALE_MAKE_KWARGS, wrap_atari
from dqn_cli.config import EnvConfig
from dqn_cli.errors import ConfigError

# Train, periodic-eval and final-eval episodes draw from disjoint seed ranges derived from the
# run seed, so the final score is measured on episodes that never picked the best checkpoint.
TRAIN_SEED_OFFSET = 0
EVAL_SEED_OFFSET = 1_000_000
FINAL_EVAL_SEED_OFFSET = 2_000_000


# Packages whose envs need an extra of ours: the install line a missing one gets.
_EXTRAS = {"ale_py": "atari", "minatar": "minatar"}


def import_env_module(name: Optional[str]) -> None:
    """Import the package that registers a third-party env (env.import_module=my_envs), and with
    `module:function` also call that function once, for packages that register on request
    (env.import_module=minatar.gym:register_envs)."""
    if not name:
        return
    module_name, _, function = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        extra = _EXTRAS.get(module_name.split(".")[0])
        install = f'pip install "dqn-cli[{extra}]"' if extra else "install the package that provides it"
        raise ConfigError(f"env.import_module={name!r} cannot be imported ({error}); {install} "
                          "in this environment") from None
    except Exception as error:  # the module itself is broken: a syntax error, an error at import time
        raise ConfigError(f"env.import_module={name!r} failed while importing: {_one_line(error)}; "
                          "fix that module") from None
    if function:
        if not callable(getattr(module, function, None)):
            raise ConfigError(f"env.import_module={name!r}: {module_name} has no function {function!r}; use "
                              "module:function with a function that registers the envs")
        _call_once(module_name, function)


@functools.lru_cache(maxsize=None)
def _call_once(module_name: str, function: str) -> None:
    """Registering twice makes Gymnasium warn about overridden ids, so each process calls it once."""
    try:
        getattr(importlib.import_module(module_name), function)()
    except Exception as error:
        raise ConfigError(f"env.import_module='{module_name}:{function}' failed when called: "
                          f"{_one_line(error)}") from None


def _one_line(error: Exception) -> str:
    where = f" (line {error.lineno})" if isinstance(error, SyntaxError) and error.lineno else ""
    return f"{type(error).__name__}{where}: {str(error).splitlines()[0] if str(error) else 'no message'}"


_NOT_ATARI = ("env.atari is set but env.id={id!r} is not an ALE (Atari) game; use env=pong / env=breakout, "
              "or env.atari=null for other envs")


@contextlib.contextmanager
def _older_versions_meant():
    """An older version asked for by name (CartPole-v0, MinAtar's full action set) is meant: no warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*is out of date\. You should consider upgrading")
        yield


def make_env(cfg: EnvConfig, render_mode: Optional[str] = None, training: bool = False) -> gym.Env:
    """One environment, with the checks a user needs to hear about in one line.

    `training` adds what only the learner sees (Atari's episodic life); evaluation envs play whole games.
    """
    import_env_module(cfg.import_module)
    kwargs = {**(ALE_MAKE_KWARGS if cfg.atari is not None else {}), **cfg.make_kwargs}
    if cfg.max_episode_steps is not None and cfg.atari is None:  # Atari's counts agent steps, not frames
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        with _older_versions_meant():
            env = gym.make(cfg.id, **kwargs)
    except gym.error.Error as error:
        if isinstance(error, (gym.error.NameNotFound, gym.error.NamespaceNotFound,
                              gym.error.VersionNotFound, gym.error.UnregisteredEnv)):
            close = difflib.get_close_matches(cfg.id, list(gym.registry), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else "; pick one from gymnasium.pprint_registry()"
            raise ConfigError(f"env.id={cfg.id!r} is not a registered gymnasium environment{hint}") from None
        raise ConfigError(f"env.id={cfg.id!r} could not be made: {error}") from None
    except TypeError as error:
        if cfg.atari is not None:  # ALE's frameskip / obs_type arguments refused: not an Atari game
            raise ConfigError(_NOT_ATARI.format(id=cfg.id)) from None
        raise ConfigError(f"env.make_kwargs={cfg.make_kwargs!r} not accepted by {cfg.id}: {error}") from None
    if cfg.atari is not None:
        if not hasattr(env.unwrapped, "ale"):
            raise ConfigError(_NOT_ATARI.format(id=cfg.id))
        env = wrap_atari(env, cfg.atari, training, cfg.max_episode_steps)
    if cfg.frame_stack > 1:
        env = gym.wrappers.FrameStackObservation(env, cfg.frame_stack)
    check_spaces(env, cfg.id)
    return env


def make_batched_env(cfg: EnvConfig, num_envs: int) -> Optional[gym.vector.VectorEnv]:
    """`num_envs` copies as one numpy-vectorised env where Gymnasium has one (CartPole), else None.

    Such an env steps every copy in one array operation and resets each copy on the step after its
    episode ends (next-step autoreset). Start it with `reset_like_single_envs`.
    """
    if cfg.atari is not None or cfg.frame_stack > 1:
        return None
    import_env_module(cfg.import_module)
    try:
        spec = gym.spec(cfg.id)
    except gym.error.Error:
        return None
    if spec.vector_entry_point is None or spec.additional_wrappers:
        return None
    kwargs = dict(cfg.make_kwargs)
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    try:
        with _older_versions_meant():
            envs = gym.make_vec(cfg.id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    except TypeError:  # a make_kwargs entry only the single env takes
        return None
    envs.reset(seed=0)
    state = getattr(envs.unwrapped, "state", None)  # one column per copy, as in CartPoleVectorEnv
    if not isinstance(state, np.ndarray) or state.ndim != 2 or state.shape[1] != num_envs:
        envs.close()
        return None
    return envs


def reset_like_single_envs(envs: gym.vector.VectorEnv, cfg: EnvConfig, seed: int) -> np.ndarray:
    """Start copy i of a numpy-vectorised env where the plain env reset with seed `seed + i`
    starts, so a batch plays exactly the episodes that envs played one at a time would. The start
    states are taken from the plain env itself."""
    single = make_env(cfg)
    observations, states = [], []
    for i in range(envs.num_envs):
        obs, _ = single.reset(seed=seed + i)
        observations.append(obs)
        states.append(np.asarray(single.unwrapped.state, dtype=envs.unwrapped.state.dtype))
    single.close()
    envs.reset(seed=seed)  # clears the step counters and pending resets
    envs.unwrapped.state = np.stack(states, axis=1)
    return np.stack(observations)


def check_spaces(env: gym.Env, env_id: str) -> None:
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ConfigError(
            f"env.id={env_id!r} has a {type(env.action_space).__name__} action space; "
            "DQN needs a Discrete one (e.g. CartPole-v1, LunarLander-v3)")
    space = env.observation_space
    if not isinstance(space, gym.spaces.Box):
        raise ConfigError(
            f"env.id={env_id!r} has a {type(space).__name__} observation space; "
            "dqn-cli supports Box observations (vectors or images)")
    if len(space.shape) not in (1, 2, 3):
        raise ConfigError(
            f"env.id={env_id!r} has observations of shape {space.shape}; dqn-cli supports vectors (1 axis) and "
            "images (2 or 3 axes), use a gymnasium observation wrapper to flatten others")


# From this many training envs a numpy-vectorised batch steps faster than Python envs side by side.
BATCHED_TRAINING_FROM = 8


def make_vector_env(cfg: EnvConfig, seed: int) -> gym.vector.VectorEnv:
    """`cfg.num_envs` copies in one process, reset in the same step an episode ends.

    SAME_STEP autoreset returns the first observation of the next episode in place of the
    last one and puts the last one in info["final_obs"]; `real_next_obs` restores it. The
    observations returned are overwritten by the next step: keep a copy, not the array.
    From BATCHED_TRAINING_FROM copies of an env with a numpy-vectorised version (CartPole),
    a `BatchedTrainingEnv` plays the same episodes, bit for bit, as one batch.
    """
    make_env(cfg).close()  # fail fast, with our one-line message, before building copies
    if cfg.vectorization == "async" and cfg.num_envs > 1:
        worker = functools.partial(_subprocess_training_env, cfg, os.getpid())
        # The standard library's processes, also inside a joblib sweep's workers (whose default
        # context cannot pass the shared memory); fork on Linux, where it spares each worker the imports.
        context = "fork" if sys.platform.startswith("linux") else "spawn"
        envs = gym.vector.AsyncVectorEnv([worker] * cfg.num_envs, context=context,
                                         autoreset_mode=gym.vector.AutoresetMode.SAME_STEP, copy=False)
        envs.action_space.seed(seed)
        return envs
    batch = make_batched_env(cfg, cfg.num_envs) if cfg.num_envs >= BATCHED_TRAINING_FROM else None
    if batch is not None:
        envs = BatchedTrainingEnv(batch, [make_env(cfg, training=True) for _ in range(cfg.num_envs)])
    else:
        envs = gym.vector.SyncVectorEnv(
            [lambda: make_env(cfg, training=True) for _ in range(cfg.num_envs)],
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
            copy=False,  # hands out its own buffer instead of a deep copy per step: TrainingState copies
        )
    envs.action_space.seed(seed)
    return envs


def _subprocess_training_env(cfg: EnvConfig, training_pid: int) -> gym.Env:
    """A training env in an async worker. Ctrl-C and a closed terminal reach the whole process
    group: the training process stops the run and closes its workers, so they must not die first.
    (AsyncVectorEnv also calls this once in the training process, to read the spaces.)"""
    if os.getpid() != training_pid:
        for name in ("SIGINT", "SIGHUP"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
    return make_env(cfg, training=True)


class BatchedTrainingEnv(gym.vector.VectorEnv):
    """A numpy-vectorised env (CartPoleVectorEnv) that behaves as make_vector_env's SyncVectorEnv.

    The batch steps every copy at once. A copy whose episode ends is reset in the same step by its
    own plain env (`singles[i]`, which only ever resets), so its next episode starts where a plain
    env with the same seed and history would start it, and the last observation goes to
    info["final_obs"]. The batch's own next-step resets never fire. The plain envs also carry the
    state for checkpoints: `capture_env_states` writes each copy into its plain env first, so a
    checkpoint looks the same whichever of the two vector envs wrote it.
    """

    def __init__(self, batch: gym.vector.VectorEnv, singles: list):
        self.batch, self.envs = batch, singles
        self.num_envs = batch.num_envs
        self.single_observation_space = singles[0].observation_space
        self.single_action_space = singles[0].action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.metadata = {**batch.metadata, "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def reset(self, *, seed=None, options=None):
        seeds = seed if isinstance(seed, (list, tuple)) else [None if seed is None else seed + i
                                                               for i in range(self.num_envs)]
        self.batch.reset(seed=seeds[0])  # clears the step counters and pending resets
        observations = [env.reset(seed=s, options=options)[0] for env, s in zip(self.envs, seeds)]
        self.read_from_singles()
        return np.stack(observations), {}

    def step(self, actions):
        obs, rewards, terminated, truncated, _ = self.batch.step(actions)
        done = terminated | truncated
        info: dict = {}
        if done.any():
            info = {"final_obs": obs.copy(), "_final_obs": done}
            core = self.batch.unwrapped
            for i in np.flatnonzero(done):
                obs[i], _ = self.envs[i].reset()
                core.state[:, i] = self.envs[i].unwrapped.state
                core.steps[i] = 0
            core.prev_done[:] = False
        return obs, rewards.astype(np.float64), terminated, truncated, info

    def write_to_singles(self) -> None:
        """Copy i's simulator state and step count into plain env i (for a checkpoint)."""
        core = self.batch.unwrapped
        for i, env in enumerate(self.envs):
            env.unwrapped.state = core.state[:, i].copy()
            _time_limit(env)._elapsed_steps = int(core.steps[i])

    def read_from_singles(self) -> None:
        """Start every copy where its plain env is (after a reset or a restored checkpoint)."""
        core = self.batch.unwrapped
        core.state = np.stack([np.asarray(env.unwrapped.state, dtype=core.state.dtype) for env in self.envs], axis=1)
        core.steps[:] = [_time_limit(env)._elapsed_steps or 0 for env in self.envs]
        core.prev_done[:] = False

    def close(self, **kwargs) -> None:
        self.batch.close()
        for env in self.envs:
            env.close()
        self.closed = True


def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit:
    layer = env
    while not isinstance(layer, gym.wrappers.TimeLimit):
        layer = layer.env
    return layer


def real_next_obs(next_obs: np.ndarray, done: np.ndarray, info: dict) -> np.ndarray:
    """The observation each env actually reached, also for envs whose episode just ended."""
    if not done.any():
        return next_obs
    fixed = next_obs.copy()
    for i in np.flatnonzero(done):
        fixed[i] = info["final_obs"][i]
    return fixed


def game_over(done: np.ndarray, info: dict) -> np.ndarray:
    """Which ended episodes end a whole game: with Atari's episodic life a lost life ends the
    learner's episode, but the score and the episode count go on until the game is over."""
    final = info.get("final_info", {})
    if "life_lost" not in final:
        return done
    return done & ~(final["life_lost"] & final["_life_lost"])


def shape_rewards(rewards: np.ndarray, scale: float, clip: Optional[float]) -> np.ndarray:
    """Training rewards: scaled, then clipped to [-clip, clip] if a clip is set."""
    shaped = rewards.astype(np.float32) * scale
    if clip is not None:
        np.clip(shaped, -clip, clip, out=shaped)
    return shaped


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


def capture_env_states(envs: gym.vector.VectorEnv) -> list:
    """Per training env: its simulator's plain-data state, its RNG and its time-limit counter.

    Classic-control envs keep their whole state in plain attributes, and MinAtar's in pure-Python
    objects, so a resumed run continues their episodes exactly; envs whose state lives in native
    objects (Box2D) are marked `exact: False` and start a new episode on resume.
    """
    if isinstance(envs, gym.vector.AsyncVectorEnv):  # their state lives in the worker processes
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
    if isinstance(envs, gym.vector.AsyncVectorEnv):
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
    their first observations. Async workers all start over together (they are all inexact)."""
    if isinstance(envs, gym.vector.AsyncVectorEnv):
        observations, _ = envs.reset(seed=list(seeds))
        return observations.copy()
    return np.stack([envs.envs[i].reset(seed=s)[0] for i, s in zip(indices, seeds)])
