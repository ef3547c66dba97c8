"""learners/update.py: the TD target and the loss, each against a hand-computed answer."""

from __future__ import annotations

import pytest
import torch

from dqn_cli.config.choices import LOSS_NAMES
from dqn_cli.learners.update import LOSSES, LearnResult, UpdateSettings, dqn_loss, td_loss, td_targets
from dqn_cli.replay import Batch


def fixed_q(values):
    """A Q-function that answers `values` for any observations."""
    table = torch.tensor(values)
    return lambda obs: table


def batch(**fields) -> Batch:
    defaults = {"obs": torch.zeros(2, 1), "actions": torch.zeros(2, dtype=torch.int64), "rewards": torch.ones(2),
                "next_obs": torch.zeros(2, 1), "terminated": torch.zeros(2)}
    return Batch(**{**defaults, **fields})


def test_termination_stops_bootstrapping_and_truncation_does_not():
    target_q = fixed_q([[3.0, 5.0], [3.0, 5.0]])
    # row 1 was cut by a time limit: stored as not terminated, so it bootstraps
    targets = td_targets(batch(terminated=torch.tensor([1.0, 0.0])), target_q, target_q, UpdateSettings(gamma=0.9))
    assert torch.allclose(targets, torch.tensor([1.0, 1.0 + 0.9 * 5.0]))


def test_double_q_lets_online_pick_and_target_value():
    target_q, online_q = fixed_q([[10.0, 1.0]]), fixed_q([[0.0, 2.0]])  # online prefers action 1
    one = batch(rewards=torch.zeros(1), terminated=torch.zeros(1))
    assert td_targets(one, online_q, target_q, UpdateSettings(gamma=1.0)).item() == 10.0
    assert td_targets(one, online_q, target_q, UpdateSettings(gamma=1.0, double_q=True)).item() == 1.0


def test_n_step_rows_bootstrap_with_their_own_discount_not_gamma():
    """A row that summed k rewards bootstraps with gamma^k (batch.discounts), whatever gamma says."""
    target_q = fixed_q([[2.0, 4.0], [2.0, 4.0]])
    rows = batch(rewards=torch.tensor([1.5, 0.5]), discounts=torch.tensor([0.9 ** 3, 0.9 ** 2]))
    targets = td_targets(rows, target_q, target_q, UpdateSettings(gamma=0.9))
    assert torch.allclose(targets, torch.tensor([1.5 + 0.729 * 4.0, 0.5 + 0.81 * 4.0]))


def test_huber_and_mse_losses():
    q, target = torch.tensor([0.0, 0.0]), torch.tensor([0.5, 3.0])
    assert td_loss(q, target, "mse").mean().item() == pytest.approx((0.25 + 9.0) / 2)
    assert td_loss(q, target, "huber").mean().item() == pytest.approx((0.5 * 0.25 + (3.0 - 0.5)) / 2)


def test_importance_weights_scale_each_sample_before_the_mean():
    q, target, weights = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.25])
    assert td_loss(q, target, "mse", weights).mean().item() == pytest.approx((0.5 * 1.0 + 0.25 * 4.0) / 2)


def test_dqn_loss_is_the_loss_of_the_actions_taken_against_the_targets():
    online_q, target_q = fixed_q([[1.0, 7.0], [2.0, 3.0]]), fixed_q([[0.0, 10.0], [4.0, 0.0]])
    rows = batch(actions=torch.tensor([1, 0]), rewards=torch.tensor([1.0, 0.0]), terminated=torch.tensor([0.0, 1.0]),
                 weights=torch.tensor([1.0, 2.0]))
    loss, q_taken, targets = dqn_loss(rows, online_q, target_q, UpdateSettings(gamma=0.5, loss="mse"))
    assert q_taken.tolist() == [7.0, 2.0] and targets.tolist() == [6.0, 0.0]
    assert loss.item() == pytest.approx((1.0 * 1.0 + 2.0 * 4.0) / 2)
    # what every learner logs: the same loss, from what the update saw
    assert LearnResult(q_taken, targets, rows.weights, "mse").loss.item() == pytest.approx(loss.item())


def test_every_loss_the_config_offers_is_implemented():
    assert set(LOSS_NAMES) == set(LOSSES)
