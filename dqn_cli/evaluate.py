"""Greedy evaluation, shared by periodic evaluation, the final evaluation and dqn-eval."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import torch

from dqn_cli.config import EnvConfig
from dqn_cli.errors import ConfigError
from dqn_cli.envs import make_batched_env, make_env, reset_like_single_envs

Policy = Callable[[np.ndarray], np.ndarray]  # batch of observations -> batch of actions


@dataclass
class EvalResult:
    returns: np.ndarray  # of the episodes played to their end
    lengths: np.ndarray
    complete: bool = True  # False: stopped before every episode asked for had ended

    @property
    def mean(self) -> float:
        return float(self.returns.mean()) if len(self.returns) else float("nan")

    @property
    def std(self) -> float:
        return float(self.returns.std()) if len(self.returns) else float("nan")

    def as_dict(self) -> dict:
        played = len(self.returns) > 0
        summary = {"mean": self.mean if played else None, "std": self.std if played else None,
                   "episodes": int(len(self.returns)), "min": float(self.returns.min()) if played else None,
                   "max": float(self.returns.max()) if played else None,
                   "mean_length": float(self.lengths.mean()) if played else None}
        return summary if self.complete else {**summary, "partial": True}


def greedy_policy(q_network: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> Policy:
    """Argmax actions of `q_network`: a module, or a learner's forward pass over the same weights."""
    @torch.inference_mode()
    def act(obs: np.ndarray) -> np.ndarray:
        q_values = q_network(torch.as_tensor(obs, device=device).float())
        return q_values.argmax(dim=1).cpu().numpy()

    return act


def evaluate(policy: Policy, env_cfg: EnvConfig, episodes: int, *, seed: int, max_parallel: int = 16,
             stop: Optional[Callable[[], bool]] = None,
             on_episode: Optional[Callable[[int, int], None]] = None, batched: bool = True) -> EvalResult:
    """Run `episodes` greedy episodes; episode i resets with seed `seed + i`.

    Envs with a numpy-vectorised version (CartPole) play all the episodes as one batch; others
    step up to `max_parallel` envs side by side. Either way the policy sees one batch per step
    and the result is that of playing each episode alone. `stop()` is asked after every step:
    when true, the episodes that ended so far are returned (partial). `on_episode(done, episodes)`
    is told when episodes end. `batched=False` plays single envs even where a batch is possible.
    """
    envs = make_batched_env(env_cfg, episodes) if batched else None
    if envs is not None:
        return _evaluate_batched(policy, envs, env_cfg, episodes, seed=seed, stop=stop, on_episode=on_episode)
    return _evaluate_side_by_side(policy, env_cfg, episodes, seed=seed, max_parallel=max_parallel, stop=stop,
                                  on_episode=on_episode)


def _evaluate_batched(policy: Policy, envs, env_cfg: EnvConfig, episodes: int, *, seed: int,
                      stop: Optional[Callable[[], bool]],
                      on_episode: Optional[Callable[[int, int], None]]) -> EvalResult:
    """One episode per env of a vectorised env; an env's later (auto-reset) episodes are not counted."""
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    ended = np.zeros(episodes, dtype=bool)
    try:
        obs = reset_like_single_envs(envs, env_cfg, seed)
        while not ended.all():
            if stop is not None and stop():
                return EvalResult(returns[ended], lengths[ended], complete=False)
            obs, reward, terminated, truncated, _ = envs.step(policy(obs))
            playing = ~ended
            returns[playing] += reward[playing]
            lengths[playing] += 1
            now_ended = playing & (terminated | truncated)
            if now_ended.any():
                ended |= now_ended
                if on_episode is not None:
                    on_episode(int(ended.sum()), episodes)
    finally:
        envs.close()
    return EvalResult(returns, lengths)


def _evaluate_side_by_side(policy: Policy, env_cfg: EnvConfig, episodes: int, *, seed: int, max_parallel: int,
                           stop: Optional[Callable[[], bool]],
                           on_episode: Optional[Callable[[int, int], None]]) -> EvalResult:
    """Up to `max_parallel` single envs; every episode has its own seed, so the result does not
    depend on `max_parallel`."""
    envs = [make_env(env_cfg) for _ in range(min(episodes, max_parallel))]
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    obs: List[np.ndarray] = [None] * len(envs)
    episode_of: List[int] = [-1] * len(envs)
    started = 0

    def start_next(slot: int) -> None:
        nonlocal started
        episode_of[slot] = started if started < episodes else -1
        if started < episodes:
            obs[slot], _ = envs[slot].reset(seed=seed + started)
            started += 1

    for slot in range(len(envs)):
        start_next(slot)
    ended = np.zeros(episodes, dtype=bool)
    try:
        while True:
            active = [slot for slot in range(len(envs)) if episode_of[slot] >= 0]
            if not active:
                break
            if stop is not None and stop():
                return EvalResult(returns[ended], lengths[ended], complete=False)
            actions = policy(np.stack([obs[slot] for slot in active]))
            for slot, action in zip(active, actions):
                obs[slot], reward, terminated, truncated, _ = envs[slot].step(action)
                episode = episode_of[slot]
                returns[episode] += float(reward)
                lengths[episode] += 1
                if terminated or truncated:
                    ended[episode] = True
                    start_next(slot)
                    if on_episode is not None:
                        on_episode(int(ended.sum()), episodes)
    finally:
        for env in envs:
            env.close()
    return EvalResult(returns, lengths)


def check_renders(env_cfg: EnvConfig) -> None:
    """A video needs RGB frames from env.render(): ask for one before any episode is played."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    frame, why = None, ""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not in the possible render_modes")
            env = make_env(env_cfg, render_mode="rgb_array")
        try:
            env.reset(seed=0)
            frame = env.render()
            why = f"render() returned {type(frame).__name__}"
        finally:
            env.close()
    except Exception as error:  # no render_mode argument, render() not written, ...
        why = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no message'}"
    if not (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3):
        raise ConfigError(f"video: env {env_cfg.id!r} does not draw RGB frames ({why}); leave video out, or give the "
                          "env an rgb_array render mode")


def record_video(policy: Policy, env_cfg: EnvConfig, path: Path, seed: int, fps: int = 30) -> float:
    """Play one greedy episode with seed `seed`, write it as an mp4 to `path`, return its return."""
    import imageio.v2 as imageio

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame draws off-screen: no display, no XDG warning
    env = make_env(env_cfg, render_mode="rgb_array")
    fps = env.metadata.get("render_fps") or fps
    obs, _ = env.reset(seed=seed)
    frames = [env.render()]
    episode_return, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(policy(obs[None])[0])
        episode_return += float(reward)
        frames.append(env.render())
        done = terminated or truncated
    env.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.mp4")
    imageio.mimwrite(tmp, frames, fps=fps, macro_block_size=1)
    tmp.replace(path)
    return episode_return
