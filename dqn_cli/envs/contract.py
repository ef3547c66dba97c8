"""A third-party env held to gymnasium's contract on every call: an error it raises, or a value it
returns that training cannot use (an observation of another shape, a reward that is None, an
array or NaN), becomes one line naming the env and what it did, instead of a traceback from deep
in the loop or weights that silently turn NaN."""

from __future__ import annotations

import logging
import numbers

import gymnasium as gym
import numpy as np

from dqn_cli.errors import EnvBroken, UserError

# Where the envs dqn-cli ships presets for come from: trusted, and stepped unchecked (speed).
TRUSTED_ENTRY_POINTS = ("gymnasium.envs.", "ale_py", "minatar", "shimmy")


def is_trusted(env: gym.Env) -> bool:
    entry_point = getattr(env.spec, "entry_point", None)
    return isinstance(entry_point, str) and entry_point.startswith(TRUSTED_ENTRY_POINTS)


class ContractCheckedEnv(gym.Wrapper):
    """Checks each reset() and step() of the env it wraps against its own observation space."""

    def __init__(self, env: gym.Env, env_id: str):
        super().__init__(env)
        self.env_id = env_id
        self.space: gym.spaces.Box = env.observation_space

    def _broken(self, call: str, what: str) -> EnvBroken:
        return EnvBroken(f"env {self.env_id!r} {call}: {what}; fix the env")

    def _call(self, call: str, method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except UserError:
            raise
        except Exception as error:
            message = str(error).splitlines()[0] if str(error) else "no message"
            raise self._broken(call, f"raised {type(error).__name__}: {message}") from None

    def _check_obs(self, call: str, obs) -> None:
        array = np.asarray(obs)
        if array.shape != self.space.shape:
            raise self._broken(call, f"returned an observation of shape {array.shape}; its observation_space "
                                     f"has shape {self.space.shape}")
        if array.dtype.kind not in "biuf":
            raise self._broken(call, f"returned an observation of dtype {array.dtype}; expected numbers "
                                     f"({self.space.dtype})")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise self._broken(call, "returned an observation holding NaN or inf")

    def reset(self, **kwargs):
        result = self._call("reset()", self.env.reset, **kwargs)
        if not isinstance(result, tuple) or len(result) != 2 or not isinstance(result[1], dict):
            raise self._broken("reset()", "did not return (observation, info dict)")
        self._check_obs("reset()", result[0])
        return result

    def step(self, action):
        result = self._call("step()", self.env.step, action)
        if not isinstance(result, tuple) or len(result) != 5:
            raise self._broken("step()", f"returned {len(result) if isinstance(result, tuple) else type(result).__name__}"
                                         " values; expected (observation, reward, terminated, truncated, info)")
        obs, reward, terminated, truncated, info = result
        if not isinstance(info, dict):
            raise self._broken("step()", f"returned info of type {type(info).__name__}; expected a dict")
        self._check_obs("step()", obs)
        if isinstance(reward, (bool, np.bool_)) or not isinstance(reward, (numbers.Real, np.ndarray)) \
                or np.ndim(reward) != 0:
            raise self._broken("step()", f"returned a reward of {reward!r} ({type(reward).__name__}); expected one "
                                         "finite number")
        if not np.isfinite(float(reward)):
            raise self._broken("step()", f"returned a reward of {float(reward)}")
        for name, flag in (("terminated", terminated), ("truncated", truncated)):
            if np.ndim(flag) != 0 or not isinstance(np.asarray(flag).item(), (bool, int)):
                raise self._broken("step()", f"returned {name}={flag!r}; expected True or False")
        return result

    def close(self):
        try:
            self.env.close()
        except Exception as error:  # the run's results are written; the env's own cleanup failed
            logging.getLogger("dqn_cli").warning(f"env {self.env_id!r} close() raised {type(error).__name__}: {error}")
