"""prefetch=true: a forked worker process prepares the next batch and its TD targets. The run takes the
steps sampling in one process takes, resumes exactly, goes on alone if its worker dies, says why where it
cannot prefetch, and leaves no process behind."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import select
import signal
from pathlib import Path

import gymnasium as gym
import pytest
import torch

from conftest import TINY, compose_typed, run_until, start
from dqn_cli.algorithms.dqn import DQN
from dqn_cli.compose import refuse_what_the_algorithm_does_not_use
from dqn_cli.errors import ConfigError, TrainingInterrupted
from dqn_cli.networks import build_q_network
from dqn_cli.replay.prefetch import BatchPrefetcher
from dqn_cli.run.train import train
from dqn_cli.runtime import usable_cores

pytest.importorskip("minatar", reason="the minatar extra (pip install 'dqn-cli[minatar]') is not installed")

# The ring (300) wraps before the end (600 steps), so new transitions land among the slots drawn ahead;
# the target syncs every 50 steps, so targets computed ahead go stale. Both must be caught.
SMALL = ["experiment=minatar", *TINY, "buffer.capacity=300", "target.interval=50", "checkpoint.interval=100"]
CORES = 2  # what prefetch=true needs, whatever the machine running the tests has


def flat(tree, path=""):
    """(path, leaf) pairs of a checkpoint's nested dicts and lists."""
    if isinstance(tree, dict):
        return [pair for key in sorted(tree, key=str) for pair in flat(tree[key], f"{path}/{key}")]
    if isinstance(tree, (list, tuple)):
        return [pair for i, item in enumerate(tree) for pair in flat(item, f"{path}/{i}")]
    return [(path, tree)]


def assert_same_checkpoint(a: Path, b: Path) -> None:
    """Weights, optimizer state, counters, the loop's random generators and logs agree bit for bit
    (the envs' captured state aside: MinAtar's unseeded and unused gymnasium generator differs run to run)."""
    left, right = (torch.load(path, weights_only=True) for path in (a, b))
    for key in ("online", "target", "optimizer", "counters", "rng", "loop"):
        pairs_a, pairs_b = ([pair for pair in flat(tree[key]) if not pair[0].startswith("/envs/")]
                            for tree in (left, right))
        assert [p for p, _ in pairs_a] == [p for p, _ in pairs_b], key
        for (path, x), (_, y) in zip(pairs_a, pairs_b):
            same = torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
            assert same, f"{key}{path}"


def counts(caplog) -> tuple:
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("prefetch=true: "))
    used, redrawn = (int(word.replace(",", "")) for word in line.split() if word.replace(",", "").isdigit())
    return used, redrawn


def test_prefetched_batches_give_the_steps_sampling_here_gives(tmp_path: Path, caplog):
    with caplog.at_level(logging.INFO, logger="dqn_cli"):
        prefetched = train(compose_typed([*SMALL, "prefetch=true"]), tmp_path / "on", cores=CORES)
    here = train(compose_typed([*SMALL, "prefetch=false"]), tmp_path / "off", cores=CORES)
    used, redrawn = counts(caplog)
    assert used + redrawn == prefetched["updates"] - 1  # the first batch is sampled here, nothing drawn ahead
    assert used > 400 and redrawn >= 10  # ten syncs, and the newest slot drawn now and then
    assert_same_checkpoint(tmp_path / "on/checkpoints/last.pt", tmp_path / "off/checkpoints/last.pt")
    assert prefetched["final_eval"] == here["final_eval"]
    assert multiprocessing.active_children() == []


def test_a_prefetched_run_resumes_exactly(tmp_path: Path):
    cfg = compose_typed([*SMALL, "prefetch=true"])
    train(cfg, tmp_path / "straight", cores=CORES)
    with pytest.raises(TrainingInterrupted):
        train(cfg, tmp_path / "resumed", should_stop=lambda step: step >= 350, cores=CORES)
    assert multiprocessing.active_children() == []  # the worker stopped with the run
    train(cfg, tmp_path / "resumed", resume=True, cores=CORES)
    assert_same_checkpoint(tmp_path / "straight/checkpoints/last.pt", tmp_path / "resumed/checkpoints/last.pt")


def test_a_run_whose_worker_dies_goes_on_sampling_here(tmp_path: Path, caplog):
    killed = []

    def kill_the_worker(step: int) -> bool:
        if step == 300 and not killed:
            worker = multiprocessing.active_children()[0]
            os.kill(worker.pid, signal.SIGKILL)
            killed.append(worker.pid)
        return False

    with caplog.at_level(logging.INFO, logger="dqn_cli"):
        train(compose_typed([*SMALL, "prefetch=true"]), tmp_path / "on", should_stop=kill_the_worker, cores=CORES)
    train(compose_typed([*SMALL, "prefetch=false"]), tmp_path / "off", cores=CORES)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"the worker process (pid {killed[0]}) exited with code -9" in w for w in warnings)
    assert_same_checkpoint(tmp_path / "on/checkpoints/last.pt", tmp_path / "off/checkpoints/last.pt")


def built_dqn(overrides: list, cores: int) -> DQN:
    """DQN's parts for a Breakout-shaped env, built as a run builds them: after setting torch's threads
    (torch_threads=0 picks one for this network)."""
    cfg = compose_typed(overrides)
    space = gym.spaces.Box(0, 1, (10, 10, 4), dtype=bool)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads or 1)
    try:
        return DQN(build_q_network(cfg.network, space.shape, space.dtype, 6), cfg, space, torch.device("cpu"), cores)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("overrides, cores, reason", [
    (["double_q=true"], CORES, "it needs double_q=false"),
    (["buffer=prioritized"], CORES, "it needs buffer=uniform"),
    (["target=soft", "env.num_envs=2"], CORES, "it needs env.num_envs=1, target=hard"),
    (["train_freq=4"], CORES, "it needs train_freq=1 (steps)"),
    ([], 1, "it needs 2 cores for this run (it may use 1)"),
    (["torch_threads=2"], CORES, "it needs torch_threads=1 (the worker takes the other core; now 2)"),
    (["compile=true", "network.activation=gelu"], CORES, "it needs compile=false or a fast learner"),
])
def test_where_prefetch_cannot_work_the_run_says_why_and_samples_here(caplog, overrides, cores, reason):
    with caplog.at_level(logging.WARNING, logger="dqn_cli"):
        dqn = built_dqn(["experiment=minatar", "prefetch=true", *overrides], cores)
    assert dqn.prefetcher is None and dqn.sample == dqn.replay.sample
    assert [r.getMessage() for r in caplog.records] == [f"prefetch=true is off for this run: {reason}"]


def test_the_minatar_preset_prefetches():
    dqn = built_dqn(["experiment=minatar"], CORES)
    assert isinstance(dqn.prefetcher, BatchPrefetcher) and dqn.sample == dqn.prefetcher.sample


def test_prefetch_with_algorithm_pqn_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="prefetch: algorithm=pqn keeps no replay buffer to prefetch from"):
        refuse_what_the_algorithm_does_not_use("pqn", ["algorithm=pqn", "prefetch=true"])


def children_of(pid: int) -> list:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError):
            pass  # the process ended while being read
    return found


@pytest.mark.skipif(usable_cores() < 2, reason="prefetch=true starts its worker only where the run may use 2 cores")
def test_a_killed_training_process_leaves_no_worker_behind(workdir: Path):
    process = start(["experiment=minatar", "total_steps=200000", "learning_starts=100", "eval.interval=0",
                     "log.progress=off", "hydra.run.dir=run"], workdir)
    worker = None
    try:
        run_until(process, lambda: children_of(process.pid), timeout=120)  # the worker starts at the first update
        worker = children_of(process.pid)[0]
        watch = os.pidfd_open(worker)
        process.kill()
        process.wait()
        gone = select.select([watch], [], [], 10)[0] == [watch]
        os.close(watch)
        assert gone, "the worker outlived its training process"
    finally:
        process.kill()
        if worker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)  # a failing test leaves nothing running either
