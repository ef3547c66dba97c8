"""Image-based games: the Atari preprocessing, the frame-once replay, the Nature CNN, and a real
ALE smoke run (Pong and Breakout ship with ale-py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import TINY, only_run_dir, run_cli
from dqn_cli.run.train import train
from dqn_cli.envs.atari import AtariFrames, EpisodicLife, FireOnLifeStart, area_taps, resize_area
from dqn_cli.replay import NStepAccumulator, ReplayBuffer
from dqn_cli.runtime import resolve_device
from dqn_cli.config import (
    AtariConfig,
    AutoNetworkConfig,
    EnvConfig,
    MLPConfig,
    NatureCNNConfig,
    RMSpropConfig,
)
from dqn_cli.envs import game_over, make_env
from dqn_cli.errors import ConfigError
from dqn_cli.networks import MLPQNetwork, NatureCNN, build_q_network
from conftest import tiny_config

NOOP, FIRE = 0, 1


class FakeAtari(gym.Env):
    """A stand-in ALE game: frame f shows the value f, in the left half on even frames and the
    right half on odd ones (Atari sprites flicker like this); reward 1 per frame; a life is lost
    every `life_every` frames and the game ends with the last one. Actions are recorded."""

    observation_space = gym.spaces.Box(0, 255, (210, 160), np.uint8)
    action_space = gym.spaces.Discrete(4)

    def __init__(self, lives: int = 3, life_every: int = 10, **ale_kwargs):
        self.start_lives, self.life_every = lives, life_every
        self.ale = self  # the wrappers ask env.unwrapped.ale.lives()
        self.resets, self.actions = 0, []

    def lives(self) -> int:
        return self._lives

    def get_action_meanings(self):
        return ["NOOP", "FIRE", "RIGHT", "LEFT"]

    def _screen(self) -> np.ndarray:
        screen = np.zeros((210, 160), np.uint8)
        (screen[:, :80] if self.frame % 2 == 0 else screen[:, 80:])[:] = self.frame % 256
        return screen

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.frame, self._lives = 0, self.start_lives
        self.resets += 1
        return self._screen(), {}

    def step(self, action):
        self.actions.append(int(action))
        self.frame += 1
        if self.frame % self.life_every == 0:
            self._lives -= 1
        return self._screen(), 1.0, self._lives == 0, False, {"lives": self._lives}


gym.register("FakeAtari-v0", entry_point=FakeAtari)


def fake_env_config(**atari) -> EnvConfig:
    return EnvConfig(id="FakeAtari-v0", reward_clip=1.0, frame_stack=4,
                     atari=AtariConfig(**{"noop_max": 0, **atari}))


# preprocessing -------------------------------------------------------------------------------

def test_area_resize_averages_what_each_pixel_covers():
    frame = np.random.default_rng(0).integers(0, 256, (210, 160)).astype(np.uint8)

    def dense(source, target):  # the area-interpolation matrix, written out pixel by pixel
        weights = np.zeros((target, source))
        for t in range(target):
            lo, hi = t * source / target, (t + 1) * source / target
            for s in range(source):
                weights[t, s] = max(0.0, min(hi, s + 1) - max(lo, s)) * target / source
        return weights

    expected = dense(210, 84) @ frame.astype(float) @ dense(160, 84).T
    assert np.abs(resize_area(frame, 84, 84).astype(float) - expected).max() <= 1.0  # float32 rounding
    assert (resize_area(np.full((210, 160), 77, np.uint8), 84, 84) == 77).all()
    assert np.allclose(area_taps(210, 84)[1].sum(axis=1), 1.0)


def test_action_repeat_sums_rewards_and_max_pools_the_last_two_frames():
    env = AtariFrames(FakeAtari(life_every=1000), noop_max=0, frame_skip=4, screen_size=84)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (84, 84) and obs.dtype == np.uint8
    obs, reward, *_ = env.step(2)
    assert reward == 4.0 and env.unwrapped.frame == 4 and env.unwrapped.actions == [2, 2, 2, 2]
    # frames 3 (right half = 3) and 4 (left half = 4) pooled: both halves lit
    assert (obs[:, :40] == 4).all() and (obs[:, 44:] == 3).all()


def test_noop_starts_take_a_random_number_of_noops():
    counts = set()
    for seed in range(8):
        env = AtariFrames(FakeAtari(life_every=1000), noop_max=30, frame_skip=4, screen_size=84)
        env.reset(seed=seed)
        assert set(env.unwrapped.actions) == {NOOP} and 1 <= len(env.unwrapped.actions) <= 30
        counts.add(len(env.unwrapped.actions))
    assert len(counts) > 1


def test_episodic_life_ends_the_learners_episode_but_not_the_game():
    env = EpisodicLife(FireOnLifeStart(AtariFrames(FakeAtari(lives=2, life_every=10), 0, 4, 84)))
    env.reset(seed=0)
    fake = env.unwrapped
    assert fake.actions == [FIRE] * 4  # FIRE after the reset (frames 1-4)
    _, _, terminated, _, _ = env.step(3)  # frames 5-8
    assert not terminated
    _, _, terminated, _, info = env.step(3)  # frames 9-12: a life is lost at frame 10
    assert terminated and info["life_lost"] and fake.actions[-1] == FIRE  # and FIRE pressed for the next one
    frame = fake.frame
    env.reset()
    assert fake.resets == 1 and fake.frame == frame  # the same game goes on, from the same screen
    while not terminated or info["life_lost"]:
        _, _, terminated, _, info = env.step(3)
    assert not info["life_lost"] and fake.lives() == 0
    env.reset()
    assert fake.resets == 2  # game over: a real reset


def test_a_vector_env_tells_lost_lives_from_game_overs():
    cfg = fake_env_config()
    envs = gym.vector.SyncVectorEnv([lambda: make_env(cfg, training=True)] * 2,
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    envs.reset(seed=0)
    ended, games = np.zeros(2, int), np.zeros(2, int)
    for _ in range(5 * 7):  # seven games of five agent steps each (see the next test)
        _, _, terminated, truncated, info = envs.step(np.array([3, 3]))
        done = terminated | truncated
        ended += done
        games += game_over(done, info)
    assert games.tolist() == [7, 7] and ended.tolist() == [21, 21]  # three lives per game
    envs.close()


def test_training_counts_games_and_logs_unclipped_scores(tmp_path: Path):
    """A fake game: 30 frames, a life lost every 10. After the reset's FIRE (frames 1-4, not an
    agent step) the agent plays 5 steps: 5-8, 9-12 (+FIRE 13-16), 17-20 (+FIRE 21-24), 25-28,
    29-30. Its score is 26 (one per frame from 5 on); clipped per step, it would be 5."""
    cfg = tiny_config(env=fake_env_config(), network=NatureCNNConfig(), optimizer=RMSpropConfig(),
                      total_steps=100, learning_starts=20, batch_size=4)
    summary = train(cfg, tmp_path)
    assert summary["final_eval"]["best"]["mean"] == 26.0 and summary["final_eval"]["best"]["mean_length"] == 5
    assert summary["episodes"] == 100 // 5  # one per game, not one per life


# frame-once replay ---------------------------------------------------------------------------

def stacked_stream(rng, steps: int, lanes: int, stack: int = 4, episode_end: float = 0.1):
    """Per lane, frame stacks the way FrameStackObservation makes them: each step shifts in a
    new frame; an episode starts with the reset frame repeated."""
    def fresh():
        return rng.integers(0, 256, (8, 8)).astype(np.uint8)

    stacks = np.stack([np.stack([f] * stack) for f in (fresh() for _ in range(lanes))])
    for _ in range(steps):
        following = np.concatenate([stacks[:, 1:], np.stack([fresh() for _ in range(lanes)])[:, None]], axis=1)
        done = rng.random(lanes) < episode_end
        yield stacks, following, done
        stacks = following.copy()
        for lane in np.flatnonzero(done):
            stacks[lane] = np.stack([fresh()] * stack)


@pytest.mark.parametrize("n_step,lanes", [(1, 1), (1, 3), (3, 2)])
def test_frame_once_replay_returns_exactly_the_stacks_stored(n_step, lanes):
    rng = np.random.default_rng(n_step + lanes)
    whole = ReplayBuffer(2_000, (4, 8, 8), np.uint8, seed=0, n_step=n_step)
    frames = ReplayBuffer(2_000, (4, 8, 8), np.uint8, seed=0, n_step=n_step, frame_stack=4, num_envs=lanes)
    accumulator = NStepAccumulator(n_step, 0.9, lanes) if n_step > 1 else None
    for obs, next_obs, done in stacked_stream(rng, 300, lanes):
        row = (obs, rng.integers(0, 4, lanes), rng.random(lanes), next_obs, done & (rng.random(lanes) < 0.5))
        ready = accumulator.push(*row, done) if accumulator else row
        if ready is not None:
            whole.store(*ready)
            frames.store(*ready)
    assert len(whole) == len(frames) > 0
    a, b = whole.sample(256), frames.sample(256)
    assert torch.equal(a.obs, b.obs) and torch.equal(a.next_obs, b.next_obs) and torch.equal(a.rewards, b.rewards)
    # about one new frame per transition (+1 per episode start), not the 2 x 4 of whole stacks
    assert frames.observations.written <= len(frames) * 1.2 + 4 * lanes


def test_frame_once_replay_drops_transitions_before_their_frames_are_overwritten():
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(512, (4, 8, 8), np.uint8, seed=0, frame_stack=4, num_envs=2)
    stored = {}
    # one-step episodes: every transition brings two new frames, so the frame ring runs out first
    for obs, next_obs, done in stacked_stream(rng, 400, lanes=2, episode_end=1.0):
        slots = (buffer.position + np.arange(2)) % buffer.capacity
        buffer.store(obs, np.zeros(2), np.zeros(2), next_obs, done)
        for row, slot in enumerate(slots):
            stored[slot] = (obs[row].copy(), next_obs[row].copy())
        assert 0 < len(buffer) <= buffer.capacity
        live = (buffer.position - 1 - np.arange(len(buffer))) % buffer.capacity
        got_obs, got_next = buffer.observations.get(live)
        assert all(np.array_equal(got_obs[i], stored[s][0]) and np.array_equal(got_next[i], stored[s][1])
                   for i, s in enumerate(live))
    assert len(buffer) < buffer.capacity  # some were dropped, never read back wrong


def test_a_million_atari_transitions_fit_in_8_gb():
    buffer = ReplayBuffer(100_000, (4, 84, 84), np.uint8, seed=0, frame_stack=4)
    assert buffer.bytes_per_transition < 7_500  # one 84x84 frame (7,056 bytes) + ids and scalars
    assert buffer.bytes_per_transition * 1_000_000 <= 8e9
    whole = ReplayBuffer(1_000, (4, 84, 84), np.uint8, seed=0)
    assert whole.bytes_per_transition > 7 * buffer.bytes_per_transition  # what stacked copies cost


def test_frame_once_replay_resumes_from_its_saved_state():
    rng = np.random.default_rng(1)
    buffer = ReplayBuffer(500, (4, 8, 8), np.uint8, seed=0, frame_stack=4)
    for obs, next_obs, done in stacked_stream(rng, 200, 1):
        buffer.store(obs, np.zeros(1), np.zeros(1), next_obs, done)
    restored = ReplayBuffer(500, (4, 8, 8), np.uint8, seed=0, frame_stack=4)
    restored.load_state({k: np.array(v) for k, v in buffer.state().items()})
    a, b = buffer.sample(64), restored.sample(64)
    assert torch.equal(a.obs, b.obs) and torch.equal(a.next_obs, b.next_obs)


# networks and devices ------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 84, 84), (210, 160, 3), (84, 84)])
def test_nature_cnn_takes_stacked_rgb_and_grey_screens(shape):
    net = build_q_network(NatureCNNConfig(), shape, np.uint8, n_actions=6)
    assert isinstance(net, NatureCNN)
    obs = torch.randint(0, 256, (5, *shape)).float()
    assert net(obs).shape == (5, 6)
    assert not torch.equal(net(obs[:1]), net(obs[1:2]))


def test_dueling_cnn_subtracts_the_mean_advantage():
    net = build_q_network(NatureCNNConfig(dueling=True), (4, 84, 84), np.uint8, n_actions=4)
    obs = torch.rand(3, 4, 84, 84) * 255
    features = net.torso(net.conv(obs / 255))
    assert torch.allclose(net(obs).mean(1), net.head.value(features).squeeze(1), atol=1e-5)


def test_network_auto_picks_a_cnn_for_images_and_an_mlp_for_vectors():
    assert isinstance(build_q_network(AutoNetworkConfig(), (4, 84, 84), np.uint8, 4), NatureCNN)
    assert isinstance(build_q_network(AutoNetworkConfig(), (8,), np.float32, 4), MLPQNetwork)
    with pytest.raises(ConfigError, match="network=nature_cnn needs image observations"):
        build_q_network(NatureCNNConfig(), (8,), np.float32, 4)
    assert isinstance(build_q_network(MLPConfig(), (4, 84, 84), np.uint8, 4), MLPQNetwork)  # as asked


def test_device_auto_takes_the_gpu_only_for_networks_that_gain(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", gpu_pays_off=False) == torch.device("cpu")
    assert resolve_device("auto", gpu_pays_off=True) == torch.device("cuda")
    assert resolve_device("auto:1", gpu_pays_off=True) == torch.device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto:1", gpu_pays_off=True) == torch.device("cpu")


# real games ----------------------------------------------------------------------------------

def test_real_games_come_preprocessed():
    cfg = EnvConfig(id="ALE/Breakout-v5", import_module="ale_py", reward_clip=1.0, frame_stack=4,
                    atari=AtariConfig())
    train_env, eval_env = make_env(cfg, training=True), make_env(cfg)
    obs, _ = train_env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8 and obs.max() > 0
    assert "EpisodicLife" in str(train_env) and "EpisodicLife" not in str(eval_env)  # training only
    # The Nature setting: no sticky actions (ALE's v5 games default to 0.25)
    assert train_env.unwrapped.ale.getFloat("repeat_action_probability") == 0.0
    with pytest.raises(ConfigError, match="not an ALE"):
        make_env(replace(cfg, id="CartPole-v1", import_module=None))


def test_atari_smoke_pong_trains_evaluates_and_reports_its_replay(workdir: Path):
    """The CI smoke test: `dqn-train env=pong` end to end on a tiny budget, then `dqn-eval`."""
    tiny = [a for a in TINY if not a.startswith(("total_steps", "eval.final_episodes"))]
    result = run_cli("dqn-train", ["env=pong", "total_steps=240", "batch_size=8", "buffer.capacity=1000",
                                   "env.max_episode_steps=120", "eval.final_episodes=1", *tiny], workdir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bytes each" in result.stderr + result.stdout
    run_dir = only_run_dir(workdir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_id"] == "ALE/Pong-v5" and summary["steps"] == 240
    assert summary["final_eval"]["best"]["mean_length"] == 120  # the limit counts agent steps
    evaluated = run_cli("dqn-eval", [f"run={run_dir}", "episodes=1"], workdir)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads((run_dir / "eval_best.json").read_text())["env_id"] == "ALE/Pong-v5"


def test_atari_keys_on_a_non_atari_env_are_one_line(workdir: Path):
    result = run_cli("dqn-train", ["env=gym", "env.id=CartPole-v1", "env.atari.noop_max=3"], workdir)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "env.atari.noop_max" in result.stderr
    assert not (workdir / "outputs").exists()


@pytest.mark.parametrize("make_kwargs, says", [
    ({"repeat_action_probability": 2}, "env.make_kwargs.repeat_action_probability=2 is out of range; allowed: a prob"),
    ({"repeat_action_probability": float("nan")}, "repeat_action_probability=nan is out of range"),
    ({"full_action_space": "maybe"}, "env.make_kwargs.full_action_space='maybe' is out of range; allowed: true or"),
    ({"mode": -1}, "env.make_kwargs.mode=-1 is out of range; allowed: an integer >= 0"),
    ({"difficulty": 1.5}, "env.make_kwargs.difficulty=1.5 is out of range"),
    ({"frameskip": 4}, "env.make_kwargs.frameskip is set by the Atari preprocessing; use env.atari.frame_skip"),
    ({"obs_type": "rgb"}, "env.make_kwargs.obs_type is set by the Atari preprocessing")])
def test_ale_arguments_ale_would_take_silently_are_refused(make_kwargs, says):
    """ALE plays a 'probability' of 2 and full_action_space='maybe' without a word, and frameskip
    would skip frames twice: each backend refuses them before any env is made."""
    for backend in ("gymnasium", "envpool"):
        with pytest.raises(ConfigError) as refused:
            EnvConfig(id="ALE/Pong-v5", import_module="ale_py", frame_stack=4, atari=AtariConfig(), backend=backend,
                      make_kwargs=make_kwargs)
        assert says in str(refused.value)


@pytest.mark.parametrize("setting, says", [
    ("+env.make_kwargs.mode=99", "could not be made with env.make_kwargs={'mode': 99}: RuntimeError: Invalid game mode"),
    ("+env.make_kwargs.max_num_frames_per_episode=abc", "not accepted by ALE/Pong-v5: TypeError: setInt()")])
def test_what_ale_refuses_when_the_game_is_made_is_one_line(workdir: Path, setting, says):
    """Not buried under a traceback, nor under ALE's report of the half-made emulator leaked at exit."""
    result = run_cli("dqn-train", ["env=pong", setting], workdir)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith("dqn-train: error: ") and says in result.stderr
    assert "Traceback" not in result.stderr and "leaked" not in result.stderr
    assert not (workdir / "outputs").exists()
