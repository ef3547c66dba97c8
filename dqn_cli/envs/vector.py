"""The training vector env: copies side by side in this process, one numpy batch, or async workers."""

from __future__ import annotations

import functools
import os
import signal
import sys
import warnings

import gymnasium as gym

from dqn_cli.config import EnvConfig
from dqn_cli.envs.batched import BatchedTrainingEnv, make_batched_env
from dqn_cli.envs.envpool_atari import EnvPoolAtari
from dqn_cli.envs.make import make_env
from dqn_cli.errors import ConfigError

# From this many training envs a numpy-vectorised batch steps faster than Python envs side by side.
BATCHED_TRAINING_FROM = 8


def make_vector_env(cfg: EnvConfig, seed: int) -> gym.vector.VectorEnv:
    """`cfg.num_envs` copies in one process, reset in the same step an episode ends.

    SAME_STEP autoreset returns the first observation of the next episode in place of the
    last one and puts the last one in info["final_obs"]; `real_next_obs` restores it. The
    observations returned are overwritten by the next step: keep a copy, not the array.
    From BATCHED_TRAINING_FROM copies of an env with a numpy-vectorised version (CartPole),
    a `BatchedTrainingEnv` plays the same episodes, bit for bit, as one batch. env.backend=envpool
    gives EnvPool's Atari envs behind the same interface (envpool_atari.py).
    """
    evaluated_shape = closed_env_shape(make_env(cfg))  # fail fast, with our one-line message, before building copies
    if cfg.backend == "envpool":
        return same_observations_as(evaluated_shape, EnvPoolAtari(cfg, seed), cfg)
    if cfg.vectorization == "async" and cfg.num_envs > 1:
        # A worker's error reaches us as the env's exception, which the run reports in one line.
        warnings.filterwarnings("ignore", message=r".*ERROR: (Received the following error from Worker|Raising the "
                                                  r"last exception back|Traceback \(most recent call last\))")
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


def closed_env_shape(env: gym.Env) -> tuple:
    """The observation shape of an env, closed at once: a native env (ALE's) kept alive until exit by an
    error's traceback is reported as leaked by its bindings, in lines that bury our one-line message."""
    shape = env.observation_space.shape
    env.close()
    return shape


def same_observations_as(evaluated_shape: tuple, envs: gym.vector.VectorEnv, cfg: EnvConfig) -> gym.vector.VectorEnv:
    """`envs`, if its observations are those of the Gymnasium env that evaluation plays; else one line."""
    if envs.single_observation_space.shape != evaluated_shape:
        envs.close()
        raise ConfigError(f"env.backend={cfg.backend} gives observations of shape {envs.single_observation_space.shape}, "
                          f"the Gymnasium env that evaluation plays {evaluated_shape}; use env.backend=gymnasium with "
                          "these settings")
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
