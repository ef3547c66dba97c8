"""algorithms/pqn.py: lambda-returns against a hand-computed rollout, the loop's counters, exact
resume, and the keys PQN does not use refused in one line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TIMING_KEYS, compose_typed, run_cli, TINY
from dqn_cli.algorithms.pqn import PQN, collect_rollout, lambda_returns
from dqn_cli.envs import real_next_obs, shape_rewards
from dqn_cli.config import EnvConfig, PQNConfig
from dqn_cli.errors import ConfigError, TrainingInterrupted
from dqn_cli.networks import build_q_network
from dqn_cli.run.assembly import Run
from dqn_cli.run.train import train


def test_lambda_returns_by_hand_with_a_termination_and_a_truncation_inside_the_rollout():
    """One env, four steps: step 1 ends by termination, step 2 by truncation (its real last state is
    worth 5), step 3 is the rollout's last."""
    gamma, lam = 0.9, 0.5
    rewards = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    terminated = torch.tensor([[0.0], [1.0], [0.0], [0.0]])
    ended = torch.tensor([[False], [True], [True], [False]])
    next_values = torch.tensor([[10.0], [99.0], [5.0], [7.0]])  # 99: a terminal state's value, never used
    g3 = 4.0 + gamma * 7.0  # the rollout's last step bootstraps fully
    g2 = 3.0 + gamma * 5.0  # truncated: from its own last state, not from step 3's return
    g1 = 2.0  # terminated
    g0 = 1.0 + gamma * ((1 - lam) * 10.0 + lam * g1)
    expected = torch.tensor([[g0], [g1], [g2], [g3]])
    assert torch.allclose(lambda_returns(rewards, terminated, ended, next_values, gamma, lam), expected)


def test_lambda_one_is_the_monte_carlo_return_and_lambda_zero_the_one_step_target():
    rewards, values = torch.tensor([[1.0], [1.0], [1.0]]), torch.tensor([[2.0], [3.0], [4.0]])
    none = torch.zeros(3, 1)
    assert torch.allclose(lambda_returns(rewards, none, none.bool(), values, 0.5, 1.0),
                          torch.tensor([[1 + 0.5 + 0.25 + 0.125 * 4.0], [1 + 0.5 + 0.25 * 4.0], [1 + 0.5 * 4.0]]))
    assert torch.allclose(lambda_returns(rewards, none, none.bool(), values, 0.5, 0.0), 1 + 0.5 * values)


def pqn_cartpole(**overrides):
    cfg = compose_typed(["experiment=pqn_cartpole", "total_steps=2048", "env.num_envs=4",
                         "algorithm.rollout_steps=16", "algorithm.minibatches=4", "algorithm.epochs=2",
                         "eval.interval=512", "eval.episodes=2", "eval.final_episodes=3", "log.progress=off",
                         "log.train_interval=256", "checkpoint.interval=512"])
    return replace(cfg, **overrides)


def test_a_rollout_bootstraps_each_step_from_the_state_its_env_really_reached(tmp_path: Path):
    """Every target is the lambda-return over the Q-values of the states reached: for an ended episode
    its last state (info["final_obs"]), not the next episode's first."""
    base = pqn_cartpole()  # episodes cut at 12 steps: truncated ones bootstrap from their last state
    cfg = replace(base, algorithm=replace(base.algorithm, rollout_steps=64), env=replace(base.env, max_episode_steps=12))
    run = Run(cfg, tmp_path / "run", resume=False)
    reached, step = [], run.envs.step

    def recording_step(actions):
        next_obs, reward, terminated, truncated, info = step(actions)
        reached.append((real_next_obs(next_obs, terminated | truncated, info).copy(),
                        shape_rewards(reward, cfg.env.reward_scale, cfg.env.reward_clip), terminated, terminated | truncated))
        return next_obs, reward, terminated, truncated, info

    run.envs.step = recording_step
    try:
        rollout = collect_rollout(run, run.algorithm, epsilon=1.0)
    finally:
        run.envs.close()
        run.metrics.close()
    obs, rewards, terminated, ended = (torch.as_tensor(np.stack(column)) for column in zip(*reached))
    assert (ended & ~terminated).any()  # truncations inside the rollout, so the final observations matter
    with torch.no_grad():
        next_values = run.algorithm.network(obs.flatten(0, 1).float()).amax(dim=1).view(ended.shape)
    expected = lambda_returns(rewards, terminated.float(), ended, next_values, cfg.gamma,
                              cfg.algorithm.td_lambda)
    assert torch.allclose(rollout.targets, expected, atol=1e-5)


@pytest.mark.parametrize("compile_fits", [False, True])
def test_compile_true_compiles_the_networks_pqn_fits_through(compile_fits: bool):
    import gymnasium as gym

    cfg = replace(pqn_cartpole(), compile=compile_fits)
    network = build_q_network(cfg.network, (4,), np.float32, 2)
    fits_through = PQN(network, cfg, gym.spaces.Box(-1, 1, (4,)), torch.device("cpu")).learner.online_q
    assert isinstance(fits_through, torch._dynamo.eval_frame.OptimizedModule) == compile_fits


def test_a_pqn_run_fits_each_rollout_epochs_times_minibatches(tmp_path: Path):
    cfg = pqn_cartpole()
    summary = train(cfg, tmp_path / "run")
    rollouts = cfg.total_steps // (4 * 16)
    assert summary["steps"] == cfg.total_steps and summary["updates"] == rollouts * 2 * 4
    assert summary["final_eval"]["best"]["episodes"] == 3 and (tmp_path / "run" / "checkpoints" / "best.pt").is_file()


@pytest.mark.slow
def test_a_stopped_pqn_run_resumes_bit_for_bit(tmp_path: Path):
    cfg = pqn_cartpole()
    straight = train(cfg, tmp_path / "straight")
    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path / "resumed", should_stop=lambda step: step >= 1024)
    resumed = train(cfg, tmp_path / "resumed", resume=True)
    strip = lambda summary: {k: v for k, v in summary.items() if k not in TIMING_KEYS}  # noqa: E731
    assert strip(resumed) == strip(straight)
    weights = [torch.load(tmp_path / run / "checkpoints" / "last.pt", weights_only=True)["online"]
               for run in ("straight", "resumed")]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])


@pytest.mark.parametrize("override", ["buffer=prioritized", "buffer.capacity=5000", "target=soft",
                                      "target.interval=10", "double_q=true", "learning_starts=100",
                                      "batch_size=32", "train_freq=2", "gradient_steps=2", "total_episodes=5",
                                      # out of DQN's range too: still refused for PQN's reason, not the range
                                      "buffer.capacity=10", "batch_size=0", "target.interval=0", "learning_starts=-1",
                                      "checkpoint.save_replay=true"])
def test_keys_pqn_does_not_use_are_refused_in_one_line(override: str, workdir: Path):
    tiny = [o for o in TINY if not o.startswith("learning_starts=")]  # a DQN-only key itself
    result = run_cli("dqn-train", ["algorithm=pqn", override, *tiny], workdir)
    assert_refused_for_pqn(result, override)
    assert not (workdir / "outputs").exists() or not any((workdir / "outputs").rglob("*.pt"))


def assert_refused_for_pqn(result, override: str) -> None:
    assert result.returncode != 0
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and override.split("=")[0] in error[0] and "algorithm=pqn" in error[0], error
    assert "drop it" in error[0] or "set total_steps" in error[0], error  # PQN's reason, not DQN's range


@pytest.mark.parametrize("override", ["buffer.capacity=10", "target.interval=5"])
def test_a_resumed_pqn_run_refuses_the_keys_it_does_not_use(override: str, workdir: Path):
    run = workdir / "pqn_run"
    trained = run_cli("dqn-train", ["algorithm=pqn", "total_steps=1024", "log.progress=off", "eval.final_episodes=2",
                                    f"hydra.run.dir={run}"], workdir)
    assert trained.returncode == 0, trained.stderr
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert_refused_for_pqn(run_cli("dqn-train", [f"resume={run}", override], workdir), override)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before


def test_the_rollout_must_split_into_the_minibatches():
    with pytest.raises(ConfigError, match="algorithm.minibatches"):
        PQNConfig(rollout_steps=10, minibatches=3).check_fits(EnvConfig(num_envs=4))
