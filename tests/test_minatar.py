"""MinAtar (the optional GPL `minatar` extra): registered through env.import_module=module:function,
the paper's network, bool grids stored as bits, and a whole tiny run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY, run_cli
from conftest import compose_typed, needs_cpp_compiler
from dqn_cli.config import EnvConfig, NatureCNNConfig
from dqn_cli.envs import import_env_module, make_env
from dqn_cli.errors import ConfigError
from dqn_cli.networks import NatureCNN
from dqn_cli.replay import ReplayBuffer
from dqn_cli.runtime import torch_threads, usable_cores

pytest.importorskip("minatar", reason="the minatar extra (pip install 'dqn-cli[minatar]') is not installed")
GAMES = ["breakout", "asterix", "freeway", "seaquest", "space_invaders"]


def test_module_function_imports_the_module_and_calls_the_function_once(tmp_path: Path, monkeypatch):
    (tmp_path / "my_registry.py").write_text("CALLS = []\ndef register():\n    CALLS.append(1)\nNOT_A_FUNCTION = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import_env_module("my_registry:register")
    import_env_module("my_registry:register")
    import my_registry

    assert my_registry.CALLS == [1]
    with pytest.raises(ConfigError, match="my_registry has no function 'nosuch'"):
        import_env_module("my_registry:nosuch")
    with pytest.raises(ConfigError, match="my_registry has no function 'NOT_A_FUNCTION'"):
        import_env_module("my_registry:NOT_A_FUNCTION")


@pytest.mark.parametrize("game", GAMES)
def test_every_game_registers_and_plays(game: str):
    cfg = compose_typed([f"env=minatar_{game}"])
    env = make_env(cfg.env)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.bool_ and obs.shape[:2] == (10, 10) and env.action_space.n == 6
    env.step(0)
    env.close()


def test_minatar_imports_without_its_plotting_modules_and_still_draws_frames():
    """MinAtar imports matplotlib.pyplot and seaborn (scipy, pandas) at import time, only to render:
    a fresh process registering its envs does not run them; rendering a frame then does."""
    script = ("import sys\n"
              "from dqn_cli.envs import import_env_module, make_env\n"
              "from conftest import compose_typed\n"
              "import_env_module('minatar.gym:register_envs')\n"
              "print(sorted(m for m in ('seaborn', 'matplotlib.pyplot', 'scipy.stats') if m in sys.modules))\n"
              "env = make_env(compose_typed(['env=minatar_breakout']).env, render_mode='rgb_array')\n"
              "env.reset(seed=0)\n"
              "print(env.render().shape, 'seaborn' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=Path(__file__).parent, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "(10, 10, 3) True"]


def test_the_papers_network_and_threads(monkeypatch):
    cfg = compose_typed(["experiment=minatar"])
    assert (cfg.network.name, list(cfg.network.channels), list(cfg.network.kernel_sizes), list(cfg.network.strides),
            cfg.network.hidden_size) == ("minatar_cnn", [16], [3], [1], 128)
    assert (cfg.optimizer.name, cfg.optimizer.alpha, cfg.optimizer.eps, cfg.optimizer.centered) == \
        ("rmsprop", 0.95, 0.01, True)
    assert (cfg.buffer.capacity, cfg.target.interval, cfg.learning_starts, cfg.exploration.steps, cfg.total_steps) == \
        (100_000, 1_000, 5_000, 100_000, 5_000_000)
    net = NatureCNN((10, 10, 4), np.bool_, 6, cfg.network)
    conv, linear = net.conv[0], net.torso[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (4, 16, (3, 3), (1, 1))
    assert (linear.in_features, linear.out_features) == (16 * 8 * 8, 128)
    assert net(torch.zeros(2, 10, 10, 4)).shape == (2, 6)
    assert torch_threads(0, torch.device("cpu"), net, cfg.update_rows) == 1  # a net this small loses to thread sync
    nature = NatureCNN((4, 84, 84), np.uint8, 6, NatureCNNConfig())
    assert torch_threads(0, torch.device("cpu"), nature, cfg.update_rows) == usable_cores()
    pqn = compose_typed(["experiment=pqn_minatar"])  # the same small net, fit on minibatches of 128
    assert torch_threads(0, torch.device("cpu"), net, pqn.update_rows) == usable_cores()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)  # SLURM or taskset: one core
    assert torch_threads(0, torch.device("cpu"), nature, cfg.update_rows) == 1


def test_the_paper_step_size_follows_the_game():
    """The paper's curves use each game's best step size of its sweep; the command line still wins."""
    step_sizes = {game: compose_typed(["experiment=minatar", f"env=minatar_{game}"]).optimizer.lr for game in GAMES}
    assert step_sizes == {"breakout": 2**-9, "asterix": 2**-13, "freeway": 2**-11, "seaquest": 2**-13,
                          "space_invaders": 0.00025}
    assert compose_typed(["experiment=minatar"]).optimizer.lr == 2**-9  # Breakout by default
    assert compose_typed(["experiment=minatar", "optimizer.lr=0.001"]).optimizer.lr == 0.001
    assert compose_typed(["env=minatar_breakout", "optimizer=rmsprop"]).optimizer.lr != 2**-9  # only with the preset


def test_bool_grids_are_stored_as_bits_and_read_back_exactly():
    rng = np.random.default_rng(0)
    replay = ReplayBuffer(64, (10, 10, 7), np.bool_, seed=0)
    obs, next_obs = rng.random((5, 10, 10, 7)) < 0.3, rng.random((5, 10, 10, 7)) < 0.3
    replay.add(obs, np.arange(5), np.ones(5), next_obs, np.zeros(5), np.zeros(5))
    batch = replay.gather(np.array([4, 0, 2]))
    assert np.array_equal(batch.obs.numpy(), obs[[4, 0, 2]]) and np.array_equal(batch.next_obs.numpy(), next_obs[[4, 0, 2]])
    assert batch.obs.dtype == torch.float32
    # 700 cells are 88 bytes; with the action, reward, terminal flag and discount: 2 * 88 + 20
    assert replay.bytes_per_transition == 2 * 88 + 20
    restored = ReplayBuffer(64, (10, 10, 7), np.bool_, seed=0)
    restored.load_state(replay.state())
    assert np.array_equal(restored.gather(np.array([4])).obs.numpy(), obs[[4]])


def test_a_tiny_minatar_run(workdir: Path):
    result = run_cli("dqn-train", ["experiment=minatar", "env=minatar_space_invaders", *TINY, "buffer.capacity=1000"],
                     workdir)
    assert result.returncode == 0, result.stderr
    assert "(170 bytes each)" in result.stdout + result.stderr  # 600 cells: 2 * 75 bytes of bits + 20
    assert "out of date" not in result.stderr  # v0 (all six actions, as in the paper) is asked for by name
    (run_dir,) = (workdir / "outputs" / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_id"] == "MinAtar/SpaceInvaders-v0" and summary["updates"] == 501  # one per step from step 100 to 600
    assert summary["final_eval"]["best"]["mean"] >= 0


@pytest.mark.parametrize("game", ["Breakout", "SpaceInvaders", "Seaquest"])
def test_a_games_state_is_captured_and_restored_exactly(game: str):
    """MinAtar keeps its state in pure-Python objects and a legacy numpy RNG: a checkpoint copies
    them, so a resumed run continues the same episode."""
    import gymnasium as gym

    from dqn_cli.checkpoint import to_numpy_tree, to_tensor_tree
    from dqn_cli.envs import capture_env_states, restore_env_states

    import_env_module("minatar.gym:register_envs")
    make = lambda: gym.vector.SyncVectorEnv([lambda: make_env(EnvConfig(id=f"MinAtar/{game}-v0"))])  # noqa: E731
    played, fresh = make(), make()
    played.reset(seed=[3])
    fresh.reset(seed=[99])
    rng = np.random.default_rng(0)
    for action in rng.integers(0, 6, 60):
        played.step([action])
    state = to_numpy_tree(to_tensor_tree(capture_env_states(played)))  # as a checkpoint stores it
    assert state[0]["exact"] and restore_env_states(fresh, state) == []
    for action in rng.integers(0, 6, 300):
        (obs_a, reward_a, *_), (obs_b, reward_b, *_) = played.step([action]), fresh.step([action])
        assert np.array_equal(obs_a, obs_b) and np.array_equal(reward_a, reward_b)


@pytest.mark.parametrize("compile_update", ["false", pytest.param("true", marks=needs_cpp_compiler)])  # compiled too
def test_a_minatar_run_resumes_exactly(tmp_path: Path, compile_update: str):
    from dqn_cli.errors import TrainingInterrupted
    from dqn_cli.run.train import train

    cfg = compose_typed(["experiment=minatar", *TINY, "buffer.capacity=1000", "checkpoint.interval=100",
                         f"compile={compile_update}"])
    straight = train(cfg, tmp_path / "straight")
    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path / "resumed", should_stop=lambda step: step >= 350)
    resumed = train(cfg, tmp_path / "resumed", resume=True)
    for key in ("steps", "episodes", "updates", "final_eval", "best_periodic_eval"):
        assert straight[key] == resumed[key], key
