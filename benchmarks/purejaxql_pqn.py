"""purejaxql's own `pqn_minatar.py` (Gallici et al.'s PQN code), run here unchanged but for two
adaptations to today's gymnax, for a side-by-side with `dqn-train experiment=pqn_minatar`.

purejaxql is not on PyPI and its code is not copied into this repository: pass a checkout of it
(https://github.com/mttga/purejaxql). Run with the Python of a bench-jax venv plus flax and chex:

    python3 -m venv .venv-jax && .venv-jax/bin/pip install -e ".[bench-jax]" flax chex
    .venv-jax/bin/python benchmarks/purejaxql_pqn.py --purejaxql ../purejaxql --env Breakout-MinAtar \
        --total-steps 1000000 --curve breakout_curve.json

The two adaptations (its script was written for gymnax < 1.0):
1. gymnax 1.0's `step` returns six values (terminated and truncated apart); purejaxql unpacks five
   (one `done`). Its LogWrapper is wrapped so that `step` returns `done = terminated or truncated`,
   which is what the older gymnax returned.
2. Its in-training greedy test (TEST_DURING_TRAINING) is off: gymnax 1.0's info tree no longer
   broadcasts inside that test. The training returns it logs are unchanged.
wandb (which it imports) is replaced by a stub, as its WANDB_MODE=disabled does nothing either.

Prints one JSON line: whole-process wall time from launch, compile and training seconds, env
steps/s, and the mean training return of the last 5% of updates; --curve writes the returns of
every update (purejaxql's `returned_episode_returns`, the mean over its 128 envs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

from jax_anchor import seconds_since_launch


def stub_wandb() -> None:
    wandb = types.ModuleType("wandb")
    wandb.init = wandb.log = wandb.login = lambda *args, **kwargs: None
    sys.modules["wandb"] = wandb


def five_value_log_wrapper(log_wrapper):
    """Adaptation 1: purejaxql's `obs, state, reward, done, info = env.step(...)` on gymnax 1.0."""

    def wrap(env):
        wrapped = log_wrapper(env)
        six_value_step = wrapped.step

        def step(key, state, action, params=None):
            obs, state, reward, terminated, truncated, info = six_value_step(key, state, action, params)
            return obs, state, reward, terminated | truncated, info

        wrapped.step = step
        return wrapped

    return wrap


def load_config(checkout: Path, env_name: str, total_steps: int, seed: int) -> dict:
    from omegaconf import OmegaConf

    settings = OmegaConf.to_container(OmegaConf.load(checkout / "purejaxql" / "config" / "alg" / "pqn_minatar.yaml"))
    return {**settings, "ENV_NAME": env_name, "TOTAL_TIMESTEPS": total_steps, "TOTAL_TIMESTEPS_DECAY": total_steps,
            "TEST_DURING_TRAINING": False, "WANDB_MODE": "disabled", "NUM_SEEDS": 1, "SEED": seed,
            "SAVE_PATH": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--purejaxql", type=Path, required=True, help="a checkout of github.com/mttga/purejaxql")
    parser.add_argument("--env", default="Breakout-MinAtar", help="gymnax's name: Breakout-MinAtar, Asterix-MinAtar, "
                        "Freeway-MinAtar, SpaceInvaders-MinAtar")
    parser.add_argument("--total-steps", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--curve", type=Path, help="write every update's env step and mean training return here")
    args = parser.parse_args()

    stub_wandb()
    sys.path.insert(0, str(args.purejaxql))
    import jax
    import numpy as np
    from purejaxql import pqn_minatar

    pqn_minatar.LogWrapper = five_value_log_wrapper(pqn_minatar.LogWrapper)
    config = load_config(args.purejaxql, args.env, args.total_steps, args.seed)
    train = jax.jit(pqn_minatar.make_train(config))
    key = jax.random.PRNGKey(args.seed)
    started = time.perf_counter()
    compiled = train.lower(key).compile()
    compiled_at = time.perf_counter()
    metrics = jax.block_until_ready(compiled(key))["metrics"]
    finished = time.perf_counter()
    steps = np.asarray(metrics["env_step"])
    returns = np.asarray(metrics["returned_episode_returns"])
    if args.curve:
        args.curve.write_text(json.dumps({"env": args.env, "seed": args.seed, "env_step": steps.tolist(),
                                          "return": returns.tolist()}))
    tail = max(1, len(returns) // 20)
    print(json.dumps({"env": args.env, "seed": args.seed, "steps": int(steps[-1]),
                      "compile_s": round(compiled_at - started, 1), "train_s": round(finished - compiled_at, 1),
                      "wall_s": round(seconds_since_launch(), 1),
                      "steps_per_s": round(int(steps[-1]) / seconds_since_launch()),
                      "final_training_return": round(float(returns[-tail:].mean()), 2)}))


if __name__ == "__main__":
    main()
