"""Making one environment: importing the package that registers it, gymnasium.make with the checks
a user needs to hear about in one line, Atari's preprocessing, and the seed ranges of a run."""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import importlib.util
import logging
import sys
import types
import warnings
from typing import Any, Dict, Optional

import gymnasium as gym

from dqn_cli.config import EnvConfig
from dqn_cli.envs.atari import ALE_MAKE_KWARGS, wrap_atari
from dqn_cli.envs.contract import ContractCheckedEnv, is_trusted
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
        with contextlib.nullcontext() if module_name in sys.modules else plotting_imported_on_first_use():
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


# Imported by env packages at import time only to draw a frame (MinAtar: 2-3 s of every run's start-up).
PLOTTING_MODULES = ("matplotlib.pyplot", "seaborn")


class _ImportedOnFirstUse(types.ModuleType):
    """A plotting module's stand-in in an env package: the real module is imported when the package
    first uses it, and every attribute comes from it."""

    def __getattr__(self, attribute: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attribute)


@contextlib.contextmanager
def plotting_imported_on_first_use():
    """While an env package is imported, the plotting modules it imports are stand-ins that import
    the real ones on first use (to render a frame), not at every start. Afterwards the rest of the
    process imports them as usual."""
    stand_ins = {}
    for name in PLOTTING_MODULES:
        try:  # by its package, which finding a submodule would import
            installed = name not in sys.modules and importlib.util.find_spec(name.partition(".")[0]) is not None
        except (ImportError, ValueError):
            installed = False
        if installed:  # one not installed fails the package's own import, as it would have
            stand_ins[name] = sys.modules[name] = _ImportedOnFirstUse(name)
    try:
        yield
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]


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
def older_versions_meant():
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
    env = _gym_make(cfg, kwargs)
    if cfg.atari is not None:
        if not hasattr(env.unwrapped, "ale"):
            raise ConfigError(_NOT_ATARI.format(id=cfg.id))
        env = wrap_atari(env, cfg.atari, training, cfg.max_episode_steps)
    if cfg.frame_stack > 1:
        env = gym.wrappers.FrameStackObservation(env, cfg.frame_stack)
    check_spaces(env, cfg.id)
    if is_trusted(env):
        return env
    if env.spec is not None and env.spec.max_episode_steps is None and cfg.max_episode_steps is None:
        _warn_once(f"env {cfg.id!r} has no time limit: an episode that never ends also never ends an evaluation "
                   "(a signal still stops it); set env.max_episode_steps=<steps>")
    return ContractCheckedEnv(env, cfg.id)


def _gym_make(cfg: EnvConfig, kwargs: Dict[str, Any]) -> gym.Env:
    try:
        with older_versions_meant():
            return gym.make(cfg.id, **kwargs)
    except Exception as error:
        refusal = _why_not_made(cfg, error)
    # Raised out here, with no exception context: that would keep the half-made env (and ALE's
    # emulator, which reports itself leaked at exit, burying the one line) alive.
    raise ConfigError(refusal)


def _why_not_made(cfg: EnvConfig, error: Exception) -> str:
    if isinstance(error, (gym.error.NameNotFound, gym.error.NamespaceNotFound, gym.error.VersionNotFound,
                          gym.error.UnregisteredEnv)):
        close = difflib.get_close_matches(cfg.id, list(gym.registry), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; pick one from gymnasium.pprint_registry()"
        return f"env.id={cfg.id!r} is not a registered gymnasium environment{hint}"
    if isinstance(error, gym.error.Error):
        return f"env.id={cfg.id!r} could not be made: {error}"
    if isinstance(error, TypeError):
        if cfg.atari is not None and "ale_py" not in str(gym.spec(cfg.id).entry_point):
            return _NOT_ATARI.format(id=cfg.id)  # ALE's frameskip / obs_type arguments refused
        return f"env.make_kwargs={cfg.make_kwargs!r} not accepted by {cfg.id}: {_one_line(error)}"
    # an env's constructor refusing a setting (ALE: a mode the game does not have)
    return f"env.id={cfg.id!r} could not be made with env.make_kwargs={cfg.make_kwargs!r}: {_one_line(error)}"


@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    logging.getLogger("dqn_cli").warning(message)


def check_spaces(env: gym.Env, env_id: str) -> None:
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ConfigError(
            f"env.id={env_id!r} has a {type(env.action_space).__name__} action space; "
            "DQN needs a Discrete one (e.g. CartPole-v1, LunarLander-v3)")
    if int(env.action_space.start) != 0:
        n, start = int(env.action_space.n), int(env.action_space.start)
        raise ConfigError(f"env.id={env_id!r} has actions Discrete({n}, start={start}); the Q-network's outputs are "
                          f"actions 0..{n - 1}: wrap the env so that its actions start at 0 "
                          "(gymnasium.wrappers.TransformAction)")
    space = env.observation_space
    if not isinstance(space, gym.spaces.Box):
        raise ConfigError(
            f"env.id={env_id!r} has a {type(space).__name__} observation space; "
            "dqn-cli supports Box observations (vectors or images)")
    if 0 in space.shape:
        raise ConfigError(f"env.id={env_id!r} has observations of shape {space.shape}: no values to learn from")
    if len(space.shape) not in (1, 2, 3):
        raise ConfigError(
            f"env.id={env_id!r} has observations of shape {space.shape}; dqn-cli supports vectors (1 axis) and "
            "images (2 or 3 axes), use a gymnasium observation wrapper to flatten others")
