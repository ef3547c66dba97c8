"""The Python API behind `dqn_cli.load` and `dqn_cli.train` (imported lazily by dqn_cli/__init__.py)."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from omegaconf.errors import OmegaConfBaseException

from dqn_cli.checkpoint import load_checkpoint
from dqn_cli.console import result_line
from dqn_cli.config import TrainConfig, from_dict
from dqn_cli.config.train import MAX_SEED
from dqn_cli.envs import FINAL_EVAL_SEED_OFFSET, make_env
from dqn_cli.errors import ConfigError, InvalidArgument, RunDirError
from dqn_cli.evaluate import EvalResult, check_renders, evaluate, greedy_policy, record_video
from dqn_cli.exploration import epsilon_greedy
from dqn_cli.networks import build_q_network
from dqn_cli.runtime import resolve_device


class TrainedAgent:
    """A trained Q-network with the config it was trained with: acts, scores and plays."""

    def __repr__(self) -> str:
        return (f"TrainedAgent({self.config.env.id}, {self.config.algorithm.name}, step {self.step:,}, "
                f"{self.n_actions} actions, checkpoint={str(self.checkpoint)!r})")

    def __init__(self, q_network: torch.nn.Module, config: TrainConfig, device: torch.device, *,
                 obs_shape: Sequence[int], n_actions: int, step: int, checkpoint: Path):
        self.q_network, self.config, self.device = q_network.eval(), config, device
        self.obs_shape, self.n_actions = tuple(obs_shape), n_actions
        self.step, self.checkpoint = step, checkpoint  # the env step the weights were saved at, and where

    def _batch(self, obs) -> tuple:
        """(batch, single): one observation of obs_shape becomes a batch of one; anything else must be
        (batch, *obs_shape) and finite."""
        obs = np.asarray(obs)
        single = obs.shape == self.obs_shape
        if not single and obs.shape[1:] != self.obs_shape:
            raise InvalidArgument(f"observation of shape {obs.shape}: this agent takes one of shape {self.obs_shape} "
                                  f"or a batch of shape (n, {', '.join(map(str, self.obs_shape))})")
        if obs.dtype.kind not in "biuf":
            raise InvalidArgument(f"observation of dtype {obs.dtype}: expected numbers")
        if obs.dtype.kind == "f" and not np.isfinite(obs).all():
            raise InvalidArgument("observation holds NaN or inf; the network's answer would mean nothing")
        return (obs[None] if single else obs), single

    @torch.inference_mode()
    def q_values(self, obs) -> np.ndarray:
        """Q-values (n_actions,) of one observation, or (batch, n_actions) of a batch."""
        batch, single = self._batch(obs)
        values = self.q_network(torch.as_tensor(batch, device=self.device).float()).cpu().numpy()
        return values[0] if single else values

    def predict(self, obs, epsilon: float = 0.0, rng: Optional[np.random.Generator] = None):
        """The greedy action (an int) for one observation, or an array for a batch; with `epsilon`,
        a uniformly random action instead with that probability."""
        if not 0.0 <= epsilon <= 1.0:  # NaN fails too
            raise InvalidArgument(f"epsilon={epsilon}: expected a probability from 0 to 1")
        batch, single = self._batch(obs)
        greedy_actions = lambda: self.q_values(batch).argmax(axis=1)  # noqa: E731
        if epsilon > 0:
            actions = epsilon_greedy(greedy_actions, len(batch), epsilon, rng or np.random.default_rng(),
                                     self.n_actions)
        else:
            actions = greedy_actions()
        return int(actions[0]) if single else actions

    def evaluate(self, episodes: int = 10, seed: Optional[int] = None,
                 video: Union[None, str, Path] = None, stop: Optional[Callable[[], bool]] = None) -> Dict[str, Any]:
        """Greedy episodes: mean, std and each episode's return. `seed` None uses the run's own
        final-evaluation seeds (what summary.json reports); `video` writes one episode as an mp4;
        `stop()` true ends early with the episodes played so far (marked partial)."""
        if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
            raise InvalidArgument(f"episodes={episodes!r}: episodes must be an integer >= 1")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or not 0 <= seed <= MAX_SEED):
            raise InvalidArgument(f"seed={seed!r}: expected None (the run's own seeds) or an integer from 0 to {MAX_SEED}")
        if video is not None:
            check_renders(self.config.env)
        first_seed = self.config.seed + FINAL_EVAL_SEED_OFFSET if seed is None else seed
        policy = greedy_policy(self.q_network, self.device)
        result: EvalResult = evaluate(policy, self.config.env, int(episodes), seed=first_seed, stop=stop)
        report = {**result.as_dict(), "returns": [float(r) for r in result.returns], "first_seed": first_seed}
        if video is not None and result.complete:
            report["video_return"] = record_video(policy, self.config.env, Path(video), seed=first_seed)
            report["video"] = str(video)
        return report


def checkpoint_path(run_dir: Path, checkpoint: Union[str, Path]) -> Path:
    """"best" or "last" of run_dir, a checkpoint file's path, or a file's name under run_dir/checkpoints."""
    if str(checkpoint) in ("best", "last"):
        path = run_dir / "checkpoints" / f"{checkpoint}.pt"
        if not path.is_file():
            raise RunDirError(f"{path} does not exist; is {run_dir} a dqn-train run dir "
                              "(it should hold checkpoints/best.pt and checkpoints/last.pt)?")
        return path
    name = str(checkpoint)
    candidates = [Path(name), run_dir / name, run_dir / "checkpoints" / name, run_dir / "checkpoints" / f"{name}.pt"]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        kept = sorted(p.stem for p in (run_dir / "checkpoints").glob("*.pt")) if (run_dir / "checkpoints").is_dir() \
            else []
        raise RunDirError(f"checkpoint={name}: no such file (also looked in {run_dir / 'checkpoints'}); choose best, "
                          f"last, a checkpoint file, or one of {run_dir / 'checkpoints'}: {', '.join(kept) or 'none'}")
    return found


def load(run_dir: Union[str, Path], checkpoint: Union[str, Path] = "best", device: str = "cpu") -> TrainedAgent:
    """The agent a run trained: checkpoint "best" or "last" of `run_dir`, or a path to a checkpoint."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist; pass the dir of a finished run, "
                          "e.g. one under outputs/runs/")
    path = checkpoint_path(run_dir, checkpoint)
    state = load_checkpoint(path)
    try:
        cfg = from_dict(state["config"])
    except (KeyError, TypeError, OmegaConfBaseException) as error:
        raise RunDirError(f"checkpoint {path} holds no usable config ({error}); was it written by dqn-cli?") from None
    torch_device = resolve_device(device)
    probe = make_env(cfg.env)
    obs_space, n_actions = probe.observation_space, int(probe.action_space.n)
    probe.close()
    q_network = build_q_network(cfg.network, obs_space.shape, obs_space.dtype, n_actions)
    try:
        q_network.load_state_dict(state["online"])
    except (KeyError, RuntimeError) as error:
        raise RunDirError(f"checkpoint {path} does not match its own network config: "
                          f"{str(error).splitlines()[0]}") from None
    return TrainedAgent(q_network.to(torch_device), cfg, torch_device, obs_shape=obs_space.shape, n_actions=n_actions,
                        step=int(state["counters"]["step"]), checkpoint=path)


log = logging.getLogger("dqn_cli")
_HYDRA_LOCK = threading.Lock()  # Hydra's compose API keeps one global state per process


def _checked_overrides(overrides: Sequence[str], caller: str) -> List[str]:
    """The API takes what dqn-train takes after its flags: a list of key=value or group=option strings."""
    if isinstance(overrides, (str, bytes)) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"{caller}: overrides must be a list of strings, e.g. {caller}(['total_steps=100']), "
                          f"not {overrides!r}")
    for override in overrides:
        if override.startswith("-"):
            raise ConfigError(f"{caller}: {override!r} is a dqn-train flag; the API takes key=value overrides only "
                              "(for a sweep run dqn-train -m, or call train() once per setting; to see the "
                              "config use dqn_cli.compose_config)")
        key, _, value = override.lstrip("+~").partition("=")
        if key == "hydra.run.dir" and not value.strip():  # Hydra would write into the current folder
            raise ConfigError(f"{caller}: hydra.run.dir= needs a folder, e.g. hydra.run.dir=outputs/my_run")
        if key in ("sweep", "hydra.mode") or (key not in ("hydra.run.dir",) and "," in value
                                              and not value.lstrip().startswith(("[", "{", "$", "'", '"'))):
            raise ConfigError(f"{caller}: {override!r} asks for a sweep; train() runs one run. Call it once per "
                              "setting, or run the sweep with dqn-train -m")
    return list(overrides)


@contextlib.contextmanager
def _composing(overrides: List[str], with_hydra_config: bool = False):
    """Hydra's composed config for `overrides`, inside Hydra's initialized state (one caller at a time)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from dqn_cli.compose import claim_new_run_dir, register_schemas
    from dqn_cli.hydra_errors import CONF_DIR, check_group_choices, explain_hydra_error

    with _HYDRA_LOCK:
        register_schemas()
        check_group_choices(overrides)
        claim_new_run_dir.cache_clear()  # each call is a new run: a new dir, even within the same second
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            try:
                composed = compose(config_name="config", overrides=overrides, return_hydra_config=with_hydra_config)
            except (HydraException, OmegaConfBaseException) as error:
                raise ConfigError(explain_hydra_error(error)) from None
            yield composed


def compose_config(overrides: Sequence[str] = ()) -> TrainConfig:
    """The typed config `dqn-train <overrides>` would train with, composed from the same files and
    checked the same way, without training and without a run dir. Hand it, changed as you like, to
    `dqn_cli.run.train.train(cfg, run_dir)` (docs/extending.md)."""
    from dqn_cli.compose import config_for_run

    overrides = _checked_overrides(overrides, "compose_config")
    with _composing(overrides) as composed:
        return config_for_run(composed, overrides)


def train(overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """`dqn-train <overrides>` in this process: composes the config with Hydra's compose API (the
    same files, checks and one-line errors as the CLI), trains, and returns summary.json's contents
    plus "run_dir". A user error raises a UserError whose message is that one line."""
    from omegaconf import OmegaConf, open_dict

    from dqn_cli.compose import config_for_run, refuse_a_used_run_dir, remove_if_only_bookkeeping
    from dqn_cli.run.train import train as train_core

    overrides = _checked_overrides(overrides, "train")
    set_run_dir = any(o.lstrip("+").startswith("hydra.run.dir=") for o in overrides)
    with _composing(overrides, with_hydra_config=True) as composed:
        if set_run_dir and not composed.resume:
            refuse_a_used_run_dir(Path(composed.hydra.run.dir))
        run_dir, env_choice = Path(composed.hydra.run.dir).resolve(), composed.hydra.runtime.choices.get("env")
        with open_dict(composed):
            del composed["hydra"]
        try:
            typed = config_for_run(composed, overrides, env_choice)
        except Exception:
            remove_if_only_bookkeeping(run_dir, {".hydra", ".lock"})
            raise
    try:
        with _talking(str(typed.log.progress) != "off"):
            summary = _train_in(run_dir, typed, composed, overrides)
    except Exception:
        remove_if_only_bookkeeping(run_dir, {".hydra", ".lock"})
        raise
    return {**summary, "run_dir": str(run_dir)}


@contextlib.contextmanager
def _talking(enabled: bool):
    """A caller that set up no logging (a script, a notebook) still sees progress and evaluations, on
    stderr, as dqn-train prints them; one that did gets them through its own handlers."""
    logger = logging.getLogger("dqn_cli")
    if not enabled or logger.hasHandlers():
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _train_in(run_dir: Path, typed: TrainConfig, composed, overrides: List[str]) -> Dict[str, Any]:
    """Train and end with dqn-train's result line."""
    from omegaconf import OmegaConf

    from dqn_cli.run.train import train as train_core

    if typed.resume is None:
        (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)  # what dqn-report reads, as for the CLI
        # a reproduction trains the original's config, not the composed defaults
        OmegaConf.save(composed if typed.reproduce is None else OmegaConf.structured(typed),
                       run_dir / ".hydra" / "config.yaml")
        OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
    summary = train_core(typed, run_dir, resume=typed.resume is not None, overrides=overrides)
    log.info(result_line(run_dir, summary))
    return summary


def plain_defaults() -> Dict[str, str]:
    """What a plain `dqn-train` sets each key to (its composed config, flattened), written as the help
    writes values: for the configuration reference."""
    from dqn_cli.config import flatten, to_dict

    flat = flatten(to_dict(compose_config([])))
    return {key: "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in flat.items()}

