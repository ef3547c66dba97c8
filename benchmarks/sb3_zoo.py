"""Stable-Baselines3 DQN with RL Zoo's tuned CartPole-v1 hyperparameters, for the side-by-side table.

    pip install -e ".[bench]" && python benchmarks/sb3_zoo.py --seed 0

RL Zoo (dqn.yml, CartPole-v1): 50k steps, lr 2.3e-3, batch 64, buffer 100k, learning starts 1000,
gamma 0.99, target update interval 10, train freq 256, gradient steps 128, exploration fraction
0.16, final epsilon 0.04, net 256-256. The best model is kept by SB3's EvalCallback (10 greedy
episodes every 2,500 steps, as dqn-cli's default); both it and the last model are then scored
over 100 greedy episodes. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=50_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="sb3-"))
    model = DQN("MlpPolicy", gym.make("CartPole-v1"), learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
                learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
                exploration_fraction=0.16, exploration_final_eps=0.04, policy_kwargs={"net_arch": [256, 256]},
                seed=args.seed, device="cpu", verbose=0)
    callback = EvalCallback(gym.make("CartPole-v1"), eval_freq=2500, n_eval_episodes=10, deterministic=True,
                            best_model_save_path=str(folder), verbose=0)
    started = time.perf_counter()
    model.learn(total_timesteps=args.steps, callback=callback)
    seconds = time.perf_counter() - started
    eval_env = gym.make("CartPole-v1")
    eval_env.reset(seed=args.seed + 2_000_000)
    last_mean, last_std = evaluate_policy(model, eval_env, n_eval_episodes=100, deterministic=True)
    best = DQN.load(folder / "best_model.zip", device="cpu")
    best_mean, best_std = evaluate_policy(best, eval_env, n_eval_episodes=100, deterministic=True)
    print(json.dumps({"seed": args.seed, "steps": args.steps, "train_seconds": round(seconds, 2),
                      "steps_per_second": round(args.steps / seconds, 1), "best_mean": float(best_mean),
                      "best_std": float(best_std), "last_mean": float(last_mean), "last_std": float(last_std)}))


if __name__ == "__main__":
    main()
