"""A plain re-implementation of the training loop of the PyTorch "Reinforcement Learning (DQN)" tutorial.

Same algorithm and data structures as the tutorial, written here for the side-by-side benchmark:
a deque of namedtuples as replay memory, `random.sample` + `torch.cat` to build each batch, a
mask of non-final next states, AdamW(amsgrad) 1e-4, Huber loss, gradient values clipped at 100,
and a soft target update through `state_dict()` after every env step. Stops after a fixed
number of env steps so dqn-cli can run the same number. `--live-plot` adds the tutorial's
duration chart, redrawn after every episode.

    python benchmarks/tutorial_loop.py --steps 10000 [--live-plot]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import deque, namedtuple

import gymnasium as gym
import torch
from torch import nn

Transition = namedtuple("Transition", ("state", "action", "next_state", "reward"))

BATCH_SIZE, GAMMA, EPS_START, EPS_END, EPS_DECAY, TAU, LR, MEMORY = 128, 0.99, 0.9, 0.05, 1000, 0.005, 1e-4, 10000


class QNet(nn.Module):
    def __init__(self, n_obs: int, n_actions: int):
        super().__init__()
        self.layer1, self.layer2, self.layer3 = nn.Linear(n_obs, 128), nn.Linear(128, 128), nn.Linear(128, n_actions)

    def forward(self, x):
        return self.layer3(torch.relu(self.layer2(torch.relu(self.layer1(x)))))


def draw_durations(durations: list) -> None:
    """The tutorial's per-episode live chart: every episode's length and a 100-episode mean,
    redrawn after each episode (rendered off-screen here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(1)
    figure.clf()
    lengths = torch.tensor(durations, dtype=torch.float)
    plt.xlabel("Episode")
    plt.ylabel("Duration")
    plt.plot(lengths.numpy())
    if len(lengths) >= 100:
        means = torch.cat((torch.zeros(99), lengths.unfold(0, 100, 1).mean(1).view(-1)))
        plt.plot(means.numpy())
    figure.canvas.draw()


def run(total_steps: int, seed: int = 0, live_plot: bool = False) -> dict:
    random.seed(seed)
    torch.manual_seed(seed)
    env = gym.make("CartPole-v1")
    n_actions, n_obs = env.action_space.n, env.observation_space.shape[0]
    policy_net, target_net = QNet(n_obs, n_actions), QNet(n_obs, n_actions)
    target_net.load_state_dict(policy_net.state_dict())
    optimizer = torch.optim.AdamW(policy_net.parameters(), lr=LR, amsgrad=True)
    memory: deque = deque([], maxlen=MEMORY)
    steps_done, episode_returns = 0, []

    def select_action(state):
        nonlocal steps_done
        eps = EPS_END + (EPS_START - EPS_END) * math.exp(-1.0 * steps_done / EPS_DECAY)
        steps_done += 1
        if random.random() > eps:
            with torch.no_grad():
                return policy_net(state).max(1).indices.view(1, 1)
        return torch.tensor([[env.action_space.sample()]], dtype=torch.long)

    def optimize_model():
        if len(memory) < BATCH_SIZE:
            return
        batch = Transition(*zip(*random.sample(memory, BATCH_SIZE)))
        non_final_mask = torch.tensor(tuple(s is not None for s in batch.next_state), dtype=torch.bool)
        non_final_next = torch.cat([s for s in batch.next_state if s is not None])
        state_batch, action_batch = torch.cat(batch.state), torch.cat(batch.action)
        reward_batch = torch.cat(batch.reward)
        q_taken = policy_net(state_batch).gather(1, action_batch)
        next_values = torch.zeros(BATCH_SIZE)
        with torch.no_grad():
            next_values[non_final_mask] = target_net(non_final_next).max(1).values
        expected = reward_batch + GAMMA * next_values
        loss = nn.SmoothL1Loss()(q_taken, expected.unsqueeze(1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(policy_net.parameters(), 100)
        optimizer.step()

    started = time.perf_counter()
    episode = 0
    while steps_done < total_steps:
        state, _ = env.reset(seed=seed + episode)
        state = torch.tensor(state, dtype=torch.float32).unsqueeze(0)
        episode_return, done = 0.0, False
        while not done and steps_done < total_steps:
            action = select_action(state)
            observation, reward, terminated, truncated, _ = env.step(action.item())
            episode_return += reward
            reward = torch.tensor([reward])
            done = terminated or truncated
            next_state = None if terminated else torch.tensor(observation, dtype=torch.float32).unsqueeze(0)
            memory.append(Transition(state, action, next_state, reward))
            state = next_state
            optimize_model()
            target_state, policy_state = target_net.state_dict(), policy_net.state_dict()
            for key in policy_state:
                target_state[key] = policy_state[key] * TAU + target_state[key] * (1 - TAU)
            target_net.load_state_dict(target_state)
        episode_returns.append(episode_return)
        episode += 1
        if live_plot:
            draw_durations(episode_returns)
    seconds = time.perf_counter() - started
    return {"steps": steps_done, "seconds": round(seconds, 3), "steps_per_second": round(steps_done / seconds, 1),
            "episodes": episode, "last_10_returns": episode_returns[-10:]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--live-plot", action="store_true", help="redraw the duration chart after every episode")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(json.dumps(run(args.steps, args.seed, args.live_plot)))
