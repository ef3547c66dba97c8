"""Where a Pong run's time goes on a GPU, and the update eager against replayed as a CUDA graph.

    python benchmarks/cuda_graph.py                      # on a machine with a GPU
    python benchmarks/cuda_graph.py --overrides env.num_envs=16
    python benchmarks/cuda_graph.py --device cpu --fill 200 --repeats 5 --compare 3   # a dry run (no graph)

Builds the parts of `dqn-train experiment=pong_fast device=cuda` as dqn-train does (8 Pong envs
in worker processes, the frame-once replay, the agent), fills the replay with random play, then
times, with the GPU synchronised around each: a vector step of the envs, storing it, sampling a
batch, one update eager (cuda_graph=false) and one replayed as a CUDA graph (cuda_graph=true), and
acting on the 8 envs. Then three agents from the same weights learn from the same batches, two
eager and one graphed, and it says how far their weights drift apart. Prints markdown tables;
never asserts on time.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dqn_cli.agent import DQNAgent
from dqn_cli.compose import register_schemas, typed_config
from dqn_cli.hydra_errors import CONF_DIR
from dqn_cli.run.assembly import Run
from run import _time_us  # benchmarks/run.py: best of three blocks, the GPU synchronised around each


def build_run(device: str, overrides: list, run_dir: Path) -> Run:
    from hydra import compose, initialize_config_dir

    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = typed_config(compose(config_name="config", overrides=[
            "experiment=pong_fast", f"device={device}", "log.progress=off", *overrides]))
    return Run(cfg, run_dir, resume=False)


def fill(run: Run, vector_steps: int) -> tuple:
    """Random play into the replay; seconds per vector step spent stepping and storing."""
    stepping = storing = 0.0
    obs = run.state.obs
    for _ in range(vector_steps):
        actions = run.rng.integers(0, run.n_actions, size=run.cfg.env.num_envs)
        started = time.perf_counter()
        next_obs, rewards, terminated, truncated, _ = run.envs.step(actions)
        stepped = time.perf_counter()
        run.algorithm.replay.add(obs, actions, rewards, next_obs, terminated, truncated)
        stepping, storing = stepping + stepped - started, storing + time.perf_counter() - stepped
        obs = next_obs
    return stepping / vector_steps, storing / vector_steps, obs


def agent_like(run: Run, cuda_graph: bool, start: torch.nn.Module) -> DQNAgent:
    return DQNAgent(copy.deepcopy(start), dataclasses.replace(run.cfg, cuda_graph=cuda_graph), run.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--overrides", nargs="*", default=[], help="dqn-train overrides on top of pong_fast")
    parser.add_argument("--fill", type=int, default=1_500, help="vector steps of random play into the replay")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--compare", type=int, default=200, help="updates in the eager-against-graph check")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as run_dir:
        run = build_run(args.device, args.overrides, Path(run_dir))
        cfg, replay = run.cfg, run.algorithm.replay
        step_s, store_s, obs = fill(run, args.fill)
        start = copy.deepcopy(run.algorithm.agent.online).cpu()
        eager, graphed = agent_like(run, False, start), agent_like(run, True, start)
        batches = [replay.sample(cfg.batch_size) for _ in range(64)]
        cycle = iter(range(10 ** 9))
        next_batch = lambda: batches[next(cycle) % len(batches)]  # noqa: E731
        rng = np.random.default_rng(0)
        sample_us = _time_us(lambda: replay.sample(cfg.batch_size), args.repeats, args.device)
        update_us = {"eager": _time_us(lambda: eager.learn(next_batch()), args.repeats, args.device),
                     "CUDA graph": _time_us(lambda: graphed.learn(next_batch()), args.repeats, args.device)}
        act_us = _time_us(lambda: eager.act(obs, 0.0, rng, run.n_actions), args.repeats, args.device)
        device = torch.cuda.get_device_name() if run.device.type == "cuda" else "CPU"
        print(f"{device}, torch {torch.__version__}: experiment=pong_fast {' '.join(args.overrides)}, "
              f"replay holding {len(replay):,} transitions\n")
        print("| part | microseconds |\n|---|---|")
        print(f"| envs: one vector step ({cfg.env.num_envs} envs, {cfg.env.vectorization}) | {step_s * 1e6:,.0f} |")
        print(f"| replay: store one vector step | {store_s * 1e6:,.0f} |")
        print(f"| replay: sample a batch of {cfg.batch_size} | {sample_us:,.0f} |")
        print(f"| update, eager (cuda_graph=false) | {update_us['eager']:,.0f} |")
        print(f"| update, CUDA graph (cuda_graph=true) | {update_us['CUDA graph']:,.0f} |")
        print(f"| act: Q-values for {cfg.env.num_envs} envs, greedy | {act_us:,.0f} |")
        updates = cfg.env.num_envs / cfg.train_freq  # per vector step
        for name, us in update_us.items():
            per_step = (step_s + store_s) * 1e6 + (sample_us + us) * updates + act_us
            print(f"\nthe parts of one vector step with {name} updates ({updates:g} per vector step): "
                  f"{per_step:,.0f} us, so at most {cfg.env.num_envs / per_step * 1e6:,.0f} env steps/s")

        # Whether the eager update repeats itself bit for bit on this GPU, and whether the graph's does.
        agents = {"eager": agent_like(run, False, start), "eager again": agent_like(run, False, start),
                  "CUDA graph": agent_like(run, True, start)}
        for i in range(args.compare):
            batch = replay.sample(cfg.batch_size)
            for agent in agents.values():
                agent.learn(batch)
                if i % 50 == 49:
                    agent.update_target()
        print(f"\n{args.compare} updates from the same weights on the same batches (target synced every 50):")
        reference = agents["eager"].online_weights.data
        for name in ("eager again", "CUDA graph"):
            gap = (agents[name].online_weights.data - reference).abs().max().item()
            print(f"- {name} against eager: weights {'bit-identical' if gap == 0 else f'differ, at most {gap:.3g}'}")
        run.envs.close()
        run.metrics.close()


if __name__ == "__main__":
    main()
