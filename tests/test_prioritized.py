"""Prioritized replay: the sum-tree, sampling in proportion to priority, weights and the loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_cli.replay import Batch, PrioritizedReplayBuffer, SumTree
from dqn_cli.learners import LearnResult
from dqn_cli.learners.update import td_loss


def test_sum_tree_sums_and_finds_like_a_cumulative_sum():
    rng = np.random.default_rng(0)
    tree = SumTree(100)
    values = rng.random(100)
    tree.update(np.arange(100), values)
    assert tree.total == pytest.approx(values.sum())
    prefixes = rng.random(1000) * values.sum()
    expected = np.searchsorted(np.cumsum(values), prefixes, side="right")
    assert np.array_equal(tree.find(prefixes), expected)
    tree.update(np.array([3, 3, 50]), np.array([9.0, 10.0, 0.0]))  # repeated index: the last value wins
    assert tree.values(np.array([3, 50])).tolist() == [10.0, 0.0]
    assert tree.total == pytest.approx(values.sum() - values[3] - values[50] + 10.0)


def filled(alpha=1.0, n=4, seed=0):
    buffer = PrioritizedReplayBuffer(8, (1,), np.float32, seed=seed, alpha=alpha, beta_start=0.5)
    buffer.store(np.arange(n)[:, None], np.arange(n), np.zeros(n), np.arange(n)[:, None], np.zeros(n))
    return buffer


def set_td_errors(buffer, td_errors):
    """Hand the buffer what an update on its first slots learned: these |TD errors|."""
    errors = torch.tensor(td_errors)
    buffer.update_priorities(Batch(*[None] * 7, indices=np.arange(len(td_errors))),
                             LearnResult(q_taken=errors, targets=torch.zeros_like(errors), weights=None,
                                         loss_kind="huber"))


def test_sampling_frequencies_follow_priorities():
    buffer = filled()
    set_td_errors(buffer, [1.0, 2.0, 3.0, 4.0])
    counts = np.bincount(np.concatenate([buffer.sample(64).indices for _ in range(1000)]), minlength=4)
    assert np.allclose(counts / counts.sum(), [0.1, 0.2, 0.3, 0.4], atol=0.01)


def test_alpha_flattens_priorities():
    buffer = filled(alpha=0.0)
    set_td_errors(buffer, [1.0, 2.0, 3.0, 100.0])
    counts = np.bincount(np.concatenate([buffer.sample(64).indices for _ in range(500)]), minlength=4)
    assert np.allclose(counts / counts.sum(), 0.25, atol=0.02)


@pytest.mark.parametrize("alpha", [1.0, 0.6])
def test_new_transitions_enter_at_the_highest_priority(alpha):
    buffer = filled(alpha=alpha)
    set_td_errors(buffer, [0.5, 7.0, 1.0, 2.0])
    buffer.add(np.zeros((1, 1)), np.array([0]), np.zeros(1), np.zeros((1, 1)), np.zeros(1), np.zeros(1))
    # priorities are stored raised to alpha: the new one as the highest |TD error| + eps, to the alpha
    assert buffer.tree.values(np.array([4]))[0] == pytest.approx((7.0 + 1e-6) ** alpha)
    assert buffer.tree.values(np.array([4]))[0] == pytest.approx(buffer.tree.values(np.array([1]))[0])


def test_importance_weights_and_beta_annealing():
    buffer = filled()
    set_td_errors(buffer, [1.0, 2.0, 3.0, 4.0])
    batch = buffer.sample(256)
    probabilities = (batch.indices + 1 + 1e-6) / (10 + 4e-6)
    expected = (4 * probabilities) ** -0.5
    assert np.allclose(batch.weights.numpy(), expected / expected.max(), rtol=1e-5)
    buffer.anneal(0.5)
    assert buffer.beta == pytest.approx(0.75)
    buffer.anneal(1.0)
    assert buffer.beta == 1.0


def test_weighted_loss_scales_each_sample():
    q, target = torch.zeros(2), torch.tensor([1.0, 2.0])
    assert td_loss(q, target, "mse", torch.tensor([1.0, 0.0])).mean().item() == pytest.approx(0.5)
