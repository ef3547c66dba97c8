"""Count host-to-device copies per update on a GPU, run by hand: `python benchmarks/cuda_transfers.py`.

Each update samples a batch from the numpy replay and learns from it on the GPU. The batch
should cross to the device once: one copy per field (obs, actions, rewards, next obs,
terminated), uint8 screens as bytes, converted to float on the device. This profiles 200
updates with torch.profiler and prints the host-to-device copies and bytes per update, for
the CartPole MLP and for the Nature CNN on stacked Atari frames (the frame-once replay).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from dqn_cli.agent import DQNAgent
from dqn_cli.replay import ReplayBuffer
from dqn_cli.config import AdamConfig, HardTargetConfig, MLPConfig, NatureCNNConfig, RMSpropConfig, TrainConfig
from dqn_cli.networks import build_q_network

UPDATES = 200


def filled_buffer(obs_shape: tuple, dtype, frame_stack: int, device: torch.device) -> ReplayBuffer:
    buffer = ReplayBuffer(5_000, obs_shape, dtype, seed=0, device=device, frame_stack=frame_stack)
    rng = np.random.default_rng(0)
    obs = (rng.integers(0, 255, (1, *obs_shape)) if dtype == np.uint8 else rng.normal(size=(1, *obs_shape))).astype(dtype)
    for _ in range(2_000):  # one env's stream: each next observation shifts in one new frame
        new = (rng.integers(0, 255, obs_shape[1:]) if dtype == np.uint8 else rng.normal(size=obs_shape[1:])).astype(dtype)
        next_obs = np.concatenate([obs[:, 1:], new[None, None]], axis=1) if frame_stack > 1 else \
            rng.normal(size=(1, *obs_shape)).astype(dtype)
        buffer.store(obs, rng.integers(0, 2, 1), rng.normal(size=1), next_obs, np.zeros(1))
        obs = next_obs
    return buffer


def copies_per_update(network_cfg, optimizer_cfg, obs_shape: tuple, dtype, frame_stack: int, batch: int) -> dict:
    device = torch.device("cuda")
    cfg = TrainConfig(optimizer=optimizer_cfg, target=HardTargetConfig(), gamma=0.99)
    agent = DQNAgent(build_q_network(network_cfg, obs_shape, dtype, 6), cfg, device)
    buffer = filled_buffer(obs_shape, dtype, frame_stack, device)
    for _ in range(20):
        agent.learn(buffer.sample(batch))
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(UPDATES):
            agent.learn(buffer.sample(batch))
        torch.cuda.synchronize()
    copies = sum(e.count for e in prof.key_averages() if "Memcpy HtoD" in e.key)
    sample = buffer.sample(batch)
    batch_bytes = sum(t.element_size() * t.numel() for t in (sample.actions, sample.rewards, sample.terminated)) + \
        2 * batch * int(np.prod(obs_shape)) * np.dtype(dtype).itemsize
    return {"htod_copies_per_update": copies / UPDATES, "batch_fields": 5, "batch_bytes_on_host": batch_bytes,
            "replay_bytes_per_transition": round(buffer.bytes_per_transition)}


def main() -> None:
    if not torch.cuda.is_available():
        sys.exit("no CUDA device here: run this on a GPU machine")
    rows = {
        "CartPole MLP 128-128, batch 64, Adam": copies_per_update(MLPConfig(), AdamConfig(), (4,), np.float32, 1, 64),
        "Nature CNN, 4x84x84 uint8 frames, batch 32, RMSprop": copies_per_update(
            NatureCNNConfig(), RMSpropConfig(), (4, 84, 84), np.uint8, 4, 32),
    }
    print(f"## Host-to-device copies per update on {torch.cuda.get_device_name()}\n")
    print("| setting | copies per update | batch fields | batch bytes (host) | replay bytes/transition |")
    print("|---|---|---|---|---|")
    for label, r in rows.items():
        print(f"| {label} | {r['htod_copies_per_update']:.2f} | {r['batch_fields']} | {r['batch_bytes_on_host']:,} | "
              f"{r['replay_bytes_per_transition']:,} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
