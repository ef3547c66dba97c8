"""The fast learner against the plain autograd learner: hand-written MLP backprop against
autograd, FlatAdam against torch.optim's fused Adam, flat weights against per-parameter
ones, the gate that picks a learner, and the deferred loss statistics against per-update ones."""

from __future__ import annotations

import copy
import os
from dataclasses import replace
import subprocess
import sys

import numpy as np
import pytest
import torch

import torch.nn.functional as F

from conftest import agent_config, needs_cpp_compiler
from dqn_cli.agent import DQNAgent
from dqn_cli.config import AdamConfig, AdamWConfig, NatureCNNConfig, RAdamConfig, RMSpropConfig, SGDConfig
from dqn_cli.errors import ConfigError, RunDirError
from dqn_cli.learners import (AutogradLearner, CUDAGraphLearner, FastCNNLearner, FastLayerNormCNNLearner,
                              FastMLPLearner, FlatAdam, set_learning_rate)
from dqn_cli.learners.base import clip_grad_norm_
from dqn_cli.learners.fast_mlp import MLPBackprop
from dqn_cli.learners import update
from dqn_cli.learners.flat import FlatParameters
from dqn_cli.metrics import UpdateLog
from dqn_cli.networks import DuelingQNetwork, MLPQNetwork, NatureCNN, small_image_cnn
from dqn_cli.replay import Batch
from dqn_cli.runtime import check_compiler

CPU = torch.device("cpu")


def _batch(seed: int, size: int = 32, weights: bool = False, discounts: bool = False) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(obs=torch.randn(size, 5, generator=g), actions=torch.randint(0, 3, (size,), generator=g),
                 rewards=torch.randn(size, generator=g) * 3, next_obs=torch.randn(size, 5, generator=g),
                 terminated=(torch.rand(size, generator=g) < 0.2).float(),
                 discounts=torch.rand(size, generator=g) if discounts else None,
                 weights=torch.rand(size, generator=g) if weights else None)


def _twin_agents(activation: str, loss: str, double_q: bool, optimizer=None, max_grad_value=None):
    """Two agents with the same weights: one learns through FastMLPLearner, one through AutogradLearner."""
    torch.manual_seed(0)
    network = MLPQNetwork(5, 3, [16, 16], activation)
    optimizer = replace(optimizer or AdamConfig(lr=1e-2), max_grad_value=max_grad_value)
    cfg = agent_config(optimizer=optimizer, loss=loss, double_q=double_q)
    make = lambda fast: DQNAgent(copy.deepcopy(network), cfg, CPU, fast_learner=fast)  # noqa: E731
    manual, autograd = make(True), make(False)
    assert isinstance(manual.learner, FastMLPLearner) and type(autograd.learner) is AutogradLearner
    with torch.no_grad():  # a target net unlike the online one, so double and vanilla targets differ
        manual.target_weights.data.add_(0.3)
        autograd.target_weights.data.add_(0.3)
    return manual, autograd


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("loss", ["huber", "mse"])
@pytest.mark.parametrize("double_q", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_manual_backprop_takes_the_steps_autograd_takes(activation, loss, double_q, weighted):
    manual, autograd = _twin_agents(activation, loss, double_q)
    for step in range(5):
        batch = _batch(step, weights=weighted, discounts=step % 2 == 1)
        by_hand, by_autograd = manual.learn(batch), autograd.learn(batch)
        assert torch.allclose(manual.online_weights.grad, autograd.online_weights.grad, rtol=1e-5, atol=1e-7)
        assert torch.allclose(by_hand.loss, by_autograd.loss, rtol=1e-6)
        assert torch.allclose(by_hand.td_errors, by_autograd.td_errors, rtol=1e-6, atol=1e-6)
    assert torch.allclose(manual.online_weights.data, autograd.online_weights.data, rtol=1e-5, atol=1e-6)
    assert not torch.equal(manual.online_weights.data, _twin_agents(activation, loss, double_q)[0].online_weights.data)


def test_manual_backprop_is_bit_exact_at_the_default_settings():
    """relu + Huber, unweighted (the default preset): the same products in the same order, so the
    same bits, and runs keep the numbers they had when every update went through autograd."""
    manual, autograd = _twin_agents("relu", "huber", False, AdamWConfig(lr=1e-3, amsgrad=True), max_grad_value=1.0)
    for step in range(20):
        manual.learn(_batch(step, size=64))
        autograd.learn(_batch(step, size=64))
    assert torch.equal(manual.online_weights.data, autograd.online_weights.data)


def test_networks_beyond_plain_mlps_learn_through_autograd():
    image = NatureCNN((4, 84, 84), np.uint8, 3, NatureCNNConfig())
    for network in (DuelingQNetwork(5, 3, [16], "relu"), MLPQNetwork(5, 3, [16], "elu"), image):
        assert not MLPBackprop.covers(network)
    agent = DQNAgent(DuelingQNetwork(5, 3, [16], "relu"), agent_config(optimizer=AdamConfig(lr=1e-2)), CPU)
    assert type(agent.learner) is AutogradLearner
    before = agent.online_weights.data.clone()
    agent.learn(_batch(0))
    assert agent.online_weights.grad.abs().sum() > 0 and not torch.equal(before, agent.online_weights.data)


def test_flat_parameters_are_the_modules_own_weights_and_gradients():
    torch.manual_seed(0)
    net = MLPQNetwork(5, 3, [8], "relu")
    shapes = [p.shape for p in net.parameters()]
    flat = FlatParameters(net)
    assert flat.data.numel() == sum(p.numel() for p in net.parameters())
    assert [p.shape for p in net.parameters()] == shapes
    net(torch.randn(4, 5)).sum().backward()  # autograd adds into the existing .grad views
    assert torch.equal(torch.cat([p.grad.flatten() for p in net.parameters()]), flat.grad)
    assert flat.grad.abs().sum() > 0
    with torch.no_grad():
        flat.data.zero_()
    assert all((p == 0).all() for p in net.parameters())


def _stepped_by_torch_optim(agent: DQNAgent, cfg) -> DQNAgent:
    """The same agent with its FlatAdam swapped for torch.optim's fused Adam over the same tensor."""
    adam = torch.optim.AdamW if isinstance(cfg, AdamWConfig) else torch.optim.Adam
    agent.optimizer = agent.learner.optimizer = adam(
        [agent.online_weights.param], lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
        weight_decay=cfg.weight_decay, amsgrad=cfg.amsgrad, fused=True)
    return agent


ADAMS = [AdamConfig(lr=1e-2), AdamWConfig(lr=1e-2, amsgrad=True, weight_decay=0.1), AdamConfig(weight_decay=0.01)]


@pytest.mark.parametrize("cfg", ADAMS)
def test_flat_adam_steps_as_torch_optims_fused_adam_and_shares_its_state_dict(cfg):
    manual, _ = _twin_agents("relu", "huber", False, cfg)
    reference = _stepped_by_torch_optim(_twin_agents("relu", "huber", False, cfg)[0], cfg)
    assert isinstance(manual.optimizer, FlatAdam) and manual.optimizer.kernel is not None
    assert manual.optimizer.state_dict() == reference.optimizer.state_dict()  # before any step: no state
    for step in range(5):
        manual.learn(_batch(step))
        reference.learn(_batch(step))
    assert torch.equal(manual.online_weights.data, reference.online_weights.data)
    ours, torchs = manual.optimizer.state_dict(), reference.optimizer.state_dict()
    assert ours["param_groups"] == torchs["param_groups"] and ours["state"].keys() == torchs["state"].keys()
    assert all(torch.equal(v, torchs["state"][0][k]) and v.dtype == torchs["state"][0][k].dtype
               for k, v in ours["state"][0].items())
    for source, target in ((manual, _twin_agents("relu", "huber", False, cfg)[0]),  # ours into ours
                           (reference, _twin_agents("relu", "huber", False, cfg)[0]),  # torch's into ours
                           (manual, _stepped_by_torch_optim(_twin_agents("relu", "huber", False, cfg)[0], cfg))):
        target.load_state_dict(copy.deepcopy(source.state_dict()))
        source.learn(_batch(9))
        target.learn(_batch(9))
        assert torch.equal(source.online_weights.data, target.online_weights.data)


def test_building_and_stepping_the_default_optimizer_leaves_torch_dynamo_unimported():
    """torch.optim imports torch._dynamo when an optimizer is built and on every step: about as
    long as importing torch itself, so the default run must not go through it."""
    code = ("import sys, torch\n"
            "from dqn_cli.agent import DQNAgent\n"
            "from dqn_cli.config import AdamConfig, HardTargetConfig, TrainConfig\n"
            "from dqn_cli.networks import MLPQNetwork\n"
            "from dqn_cli.replay import Batch\n"
            "cfg = TrainConfig(optimizer=AdamConfig(), target=HardTargetConfig())\n"
            "agent = DQNAgent(MLPQNetwork(5, 3, [8], 'relu'), cfg, torch.device('cpu'))\n"
            "b = Batch(torch.randn(4, 5), torch.zeros(4, dtype=torch.long), torch.ones(4), torch.randn(4, 5),"
            " torch.zeros(4), None, None)\n"
            "agent.learn(b); agent.learn(b)\n"
            "print('torch._dynamo' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_a_torch_whose_fused_kernel_differs_falls_back_to_torch_optims_step():
    cfg = AdamWConfig(lr=1e-2, amsgrad=True)
    manual, _ = _twin_agents("relu", "huber", False, cfg)
    reference = _stepped_by_torch_optim(_twin_agents("relu", "huber", False, cfg)[0], cfg)
    manual.learn(_batch(0))
    reference.learn(_batch(0))

    def changed_signature(*args, **kwargs):
        raise TypeError("_fused_adamw_() got an unexpected keyword argument 'lr'")

    manual.optimizer.kernel = changed_signature
    for step in range(1, 4):
        manual.learn(_batch(step))
        reference.learn(_batch(step))
    assert manual.optimizer.kernel is None and manual.optimizer.torch_optimizer is not None  # for good
    assert torch.equal(manual.online_weights.data, reference.online_weights.data)
    assert manual.optimizer.state_dict()["state"][0]["step"] == 4


def test_sgd_steps_through_torch_optim():
    agent = DQNAgent(MLPQNetwork(5, 3, [8], "relu"), agent_config(optimizer=SGDConfig(lr=0.1, momentum=0.9)), CPU)
    assert isinstance(agent.optimizer, torch.optim.Optimizer)
    before = agent.online_weights.data.clone()
    agent.learn(_batch(0))
    assert not torch.equal(before, agent.online_weights.data)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_flat_radam_steps_as_torch_optims_radam_and_shares_its_state_dict(weight_decay):
    from dqn_cli.learners import FlatRAdam

    generator = torch.Generator().manual_seed(0)
    ours_param = torch.randn(1000, generator=generator)
    theirs_param = ours_param.clone()
    ours = FlatRAdam(ours_param, lr=5e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    theirs = torch.optim.RAdam([theirs_param], lr=5e-4, weight_decay=weight_decay)
    for step in range(12):  # RAdam's first steps are unrectified (rho_t <= 5), the later ones rectified
        if step == 6:  # each loads the other's state midway
            ours.load_state_dict(theirs.state_dict())
            theirs.load_state_dict(ours.state_dict())
        grad = torch.randn(1000, generator=generator)
        ours_param.grad, theirs_param.grad = grad.clone(), grad.clone()
        ours.step()
        theirs.step()
        assert torch.equal(ours_param, theirs_param), step


@pytest.mark.parametrize("centered,momentum,weight_decay", [(True, 0.0, 0.0), (False, 0.0, 0.0), (True, 0.9, 0.0),
                                                           (False, 0.9, 0.01)])
def test_flat_rmsprop_steps_as_torch_optims_rmsprop_and_shares_its_state_dict(centered, momentum, weight_decay):
    """A third of the weights never get a gradient (as MinAtar's empty cells leave them), so their
    statistics stay zero and the square root takes its zero handling; with weight decay no gradient is
    zero, and it takes torch's own."""
    from dqn_cli.learners import FlatRMSprop

    settings = {"lr": 1e-3, "alpha": 0.95, "eps": 0.01, "centered": centered, "momentum": momentum,
                "weight_decay": weight_decay}
    generator = torch.Generator().manual_seed(0)
    ours_param = torch.randn(1000, generator=generator)
    theirs_param = ours_param.clone()
    ours, theirs = FlatRMSprop(ours_param, **settings), torch.optim.RMSprop([theirs_param], **settings)
    for step in range(12):
        if step == 6:  # each loads the other's state midway
            ours.load_state_dict(theirs.state_dict())
            theirs.load_state_dict(ours.state_dict())
        grad = torch.randn(1000, generator=generator)
        grad[::3] = 0.0
        ours_param.grad, theirs_param.grad = grad.clone(), grad.clone()
        ours.step()
        theirs.step()
        assert torch.equal(ours_param, theirs_param), step
    assert isinstance(DQNAgent(MLPQNetwork(5, 3, [8], "relu"), agent_config(optimizer=RMSpropConfig()), CPU).optimizer,
                      FlatRMSprop)


def test_the_square_root_without_the_slow_path_for_zeros_gives_torchs_numbers():
    from dqn_cli.learners.adam import sqrt_

    values = torch.tensor([0.0, -0.0, 1e-40, 1e-38, 2.0, 1e30, -1.0, float("inf"), float("nan")]).repeat(40)
    values = values[torch.randperm(len(values), generator=torch.Generator().manual_seed(0))]
    ours = sqrt_(values.clone(), torch.empty_like(values))
    assert torch.equal(ours.nan_to_num(nan=-7.0), torch.sqrt(values).nan_to_num(nan=-7.0))  # -0.0 == 0.0


def test_a_checkpoint_with_per_parameter_optimizer_state_is_refused_in_one_line():
    agent = DQNAgent(MLPQNetwork(5, 3, [8], "relu"), agent_config(optimizer=AdamConfig()), CPU)
    agent.learn(_batch(0))
    old_style = torch.optim.Adam(MLPQNetwork(5, 3, [8], "relu").parameters())  # one entry per tensor
    state = {**agent.state_dict(), "optimizer": old_style.state_dict()}
    with pytest.raises(RunDirError, match="older dqn-cli"):
        agent.load_state_dict(state)


@pytest.mark.parametrize("max_norm", [0.5, 20.0])  # a gradient of norm about 5: clipped, and left alone
def test_clipping_the_flat_gradient_gives_torchs_clip_grad_norm_numbers(max_norm: float):
    torch.manual_seed(0)
    grad = torch.randn(10_000) * 0.05
    reference = torch.nn.Parameter(torch.zeros(10_000))
    reference.grad = grad.clone()
    torch.nn.utils.clip_grad_norm_(reference, max_norm)
    clipped = grad.clone()
    clip_grad_norm_(clipped, max_norm)
    assert torch.equal(clipped, reference.grad)
    assert torch.equal(clipped, grad) == bool(grad.norm() < max_norm)


@pytest.mark.parametrize("weighted", [False, True])
def test_update_log_reduces_many_updates_to_each_updates_loss_and_mean_q(weighted):
    manual, _ = _twin_agents("relu", "huber", False)
    log = UpdateLog(losses=[1.5], mean_qs=[-2.0])  # one update read back from a checkpoint
    results = [manual.learn(_batch(step, weights=weighted)) for step in range(4)]
    for result in results:
        log.append(result)
    losses, mean_qs = log.per_update()
    assert losses == pytest.approx([1.5] + [r.loss.item() for r in results], rel=1e-6)
    assert mean_qs == pytest.approx([-2.0] + [r.q_taken.mean().item() for r in results], rel=1e-6)
    assert UpdateLog(losses=[0.5]) and not UpdateLog()


def test_a_loss_the_fast_learner_does_not_know_falls_back_to_autograd(monkeypatch):
    monkeypatch.setitem(update.LOSSES, "l1", F.l1_loss)  # a loss added without a hand-written gradient
    network = MLPQNetwork(5, 3, [8], "relu")
    assert MLPBackprop.covers(network) and not FastMLPLearner.covers(network, "l1")
    agent = DQNAgent(network, agent_config(optimizer=AdamConfig(lr=1e-2), loss="l1"), CPU)
    assert type(agent.learner) is AutogradLearner
    before = agent.online_weights.data.clone()
    result = agent.learn(_batch(0))
    assert torch.isclose(result.loss, F.l1_loss(result.q_taken, result.targets))
    assert not torch.equal(before, agent.online_weights.data)


def _image_batch(seed: int, shape, size: int = 16, weights: bool = False) -> Batch:
    g = torch.Generator().manual_seed(seed)
    image = lambda: (torch.rand(size, *shape, generator=g) * 255).floor()  # noqa: E731 (uint8 pixel values)
    return Batch(obs=image(), actions=torch.randint(0, 4, (size,), generator=g), rewards=torch.randn(size, generator=g),
                 next_obs=image(), terminated=(torch.rand(size, generator=g) < 0.2).float(),
                 weights=torch.rand(size, generator=g) if weights else None)


@pytest.mark.parametrize("shape,dtype", [((10, 10, 4), np.bool_), ((3, 9, 11), np.uint8)],
                         ids=["minatar-channels-last", "channels-first-stride-2"])
@pytest.mark.parametrize("loss", ["huber", "mse"])
@pytest.mark.parametrize("double_q,weighted", [(False, False), (True, True)])
def test_the_small_cnn_learner_takes_the_steps_autograd_takes(shape, dtype, loss, double_q, weighted):
    torch.manual_seed(0)
    stride = 1 if dtype == np.bool_ else 2
    cfg = NatureCNNConfig(channels=[16], kernel_sizes=[3], strides=[stride], hidden_size=32)
    network = NatureCNN(shape, dtype, 4, cfg)
    cfg = agent_config(optimizer=RMSpropConfig(lr=1e-3, alpha=0.95, eps=0.01, centered=True), gamma=0.99, loss=loss,
                       double_q=double_q)
    make = lambda fast: DQNAgent(copy.deepcopy(network), cfg, CPU, fast_learner=fast)  # noqa: E731
    manual, autograd = make(True), make(False)
    assert isinstance(manual.learner, FastCNNLearner) and type(autograd.learner) is AutogradLearner
    with torch.no_grad():
        for agent in (manual, autograd):
            agent.target_weights.data.add_(0.05)
    for step in range(5):
        batch = _image_batch(step, shape, weights=weighted)
        if dtype == np.bool_:
            batch = batch._replace(obs=(batch.obs > 200).float(), next_obs=(batch.next_obs > 200).float())
        by_hand, by_autograd = manual.learn(batch), autograd.learn(batch)
        scale = autograd.online_weights.grad.abs().max()  # products summed in another order: relative to the largest
        assert torch.allclose(manual.online_weights.grad, autograd.online_weights.grad, rtol=1e-4, atol=1e-6 * scale)
        assert torch.allclose(by_hand.td_errors, by_autograd.td_errors, rtol=1e-5, atol=1e-6)
    assert torch.allclose(manual.online_weights.data, autograd.online_weights.data, rtol=1e-5, atol=1e-6)
    assert manual.online_weights.grad.abs().sum() > 0


@pytest.mark.parametrize("loss", ["huber", "mse"])
def test_the_layer_norm_cnn_learner_fits_targets_as_autograd_does(loss):
    """PQN's MinAtar network (LayerNorm after the convolution and the hidden layer), fit to given
    targets (Learner.fit, as PQN calls it) with RAdam: the same steps as through autograd."""
    torch.manual_seed(0)
    cfg = NatureCNNConfig(channels=[16], kernel_sizes=[3], strides=[1], hidden_size=32, norm="layer")
    network = NatureCNN((10, 10, 4), np.bool_, 4, cfg)
    with torch.no_grad():  # LayerNorm starts as the identity affine map: move it, so its gradients matter
        for module in network.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5), module.bias.uniform_(-0.2, 0.2)
    agent_cfg = agent_config(optimizer=RAdamConfig(lr=1e-3, max_grad_norm=10.0), loss=loss)
    manual, autograd = (DQNAgent(copy.deepcopy(network), agent_cfg, CPU, fast_learner=fast) for fast in (True, False))
    assert isinstance(manual.learner, FastLayerNormCNNLearner) and type(autograd.learner) is AutogradLearner
    for step in range(5):
        batch = _image_batch(step, (10, 10, 4))
        obs, targets = (batch.obs > 200).float(), torch.randn(len(batch.obs), generator=torch.Generator().manual_seed(step))
        by_hand = manual.learner.fit(obs, batch.actions, targets)
        by_autograd = autograd.learner.fit(obs, batch.actions, targets)
        scale = autograd.online_weights.grad.abs().max()
        assert torch.allclose(manual.online_weights.grad, autograd.online_weights.grad, rtol=1e-4, atol=1e-6 * scale)
        assert torch.allclose(by_hand.q_taken, by_autograd.q_taken, rtol=1e-5, atol=1e-6)
    assert torch.allclose(manual.online_weights.data, autograd.online_weights.data, rtol=1e-5, atol=1e-6)
    assert not FastCNNLearner.covers(network, loss) and not FastLayerNormCNNLearner.covers(
        NatureCNN((10, 10, 4), np.bool_, 4, replace(cfg, norm="none")), loss)


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_acting_and_batches_prepared_ahead_give_the_learners_own_numbers(norm):
    """Acting's lean pass (q_values) gives the learner's forward pass bit for bit, after updates and
    after a checkpoint is loaded (it reads the weights through views made once); an update from a batch
    prepared ahead (targets and patches, as prefetch=true's worker makes them) takes the same step."""
    torch.manual_seed(0)
    cfg = NatureCNNConfig(channels=[16], kernel_sizes=[3], strides=[1], hidden_size=32, norm=norm)
    network = NatureCNN((10, 10, 4), np.bool_, 4, cfg)
    agent_cfg = agent_config(optimizer=RMSpropConfig(lr=1e-2, alpha=0.95, eps=0.01, centered=True), gamma=0.99)
    here, ahead = (DQNAgent(copy.deepcopy(network), agent_cfg, CPU) for _ in range(2))
    assert isinstance(here.learner, (FastCNNLearner, FastLayerNormCNNLearner))
    with torch.no_grad():
        for agent in (here, ahead):
            agent.target_weights.data.add_(0.05)

    def assert_acting_matches(agent: DQNAgent) -> None:
        with torch.no_grad():
            for size in (1, 5):
                obs = (torch.rand(size, 10, 10, 4) < 0.3).float()
                assert torch.equal(agent.act_q(obs), agent.learner.backprop.forward(obs))

    for step in range(4):
        batch = _image_batch(step, (10, 10, 4))
        batch = batch._replace(obs=(batch.obs > 200).float(), next_obs=(batch.next_obs > 200).float())
        prepared = ahead.learner.prepare(batch)
        assert prepared.targets is not None and prepared.prepared_obs is not None
        here.learn(batch), ahead.learn(prepared)
        assert torch.equal(here.online_weights.data, ahead.online_weights.data)
        assert_acting_matches(here)
    here.load_state_dict(DQNAgent(copy.deepcopy(network), agent_cfg, CPU).state_dict())
    assert not torch.equal(here.online_weights.data, ahead.online_weights.data)
    assert_acting_matches(here)


def _compiled_graphs() -> int:
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


@needs_cpp_compiler
@pytest.mark.parametrize("norm,optimizer", [
    ("none", RMSpropConfig(lr=1e-3, alpha=0.95, eps=0.01, centered=True)),  # DQN at the MinAtar paper's settings
    ("none", RMSpropConfig(lr=1e-3, alpha=0.95, eps=0.01, momentum=0.9)),  # RMSProp's other compiled branch
    ("layer", RAdamConfig(lr=1e-3, max_grad_norm=10.0)),  # PQN's MinAtar network, fit to its own targets
], ids=["minatar-rmsprop", "rmsprop-momentum", "layer-norm-radam"])
def test_compile_true_compiles_a_fast_learners_update_once_and_takes_its_steps(norm, optimizer):
    """compile=true where a fast learner covers the network: the update (and RMSProp's step) compile
    on the first update only, new batches and a decaying learning rate compile nothing more, and the
    steps are the eager learner's within rounding."""
    torch.manual_seed(0)
    network = NatureCNN((10, 10, 4), np.bool_, 4,
                        NatureCNNConfig(channels=[16], kernel_sizes=[3], strides=[1], hidden_size=32, norm=norm))
    cfg = agent_config(optimizer=optimizer)
    eager, compiled = (DQNAgent(copy.deepcopy(network), replace(cfg, compile=on), CPU) for on in (False, True))
    assert type(compiled.learner) is type(eager.learner) and type(eager.learner) in (FastCNNLearner,
                                                                                    FastLayerNormCNNLearner)
    torch._dynamo.reset()  # graphs cached by the other cases would be reused here, and not counted
    initial, graphs = eager.online_weights.data.clone(), _compiled_graphs()
    for step in range(6):
        batch = _image_batch(step, (10, 10, 4))
        batch = batch._replace(obs=(batch.obs > 200).float(), next_obs=(batch.next_obs > 200).float())
        for agent in (eager, compiled):
            set_learning_rate(agent.optimizer, 1e-3 * (1 - step / 6))
            if norm == "none":
                agent.learn(batch)
            else:
                agent.learner.fit(batch.obs, batch.actions, batch.rewards)
        if step == 0:
            first_update = _compiled_graphs() - graphs
    assert first_update == (2 if norm == "none" else 1)  # the gradient, and RMSProp's step (RAdam's stays eager)
    assert _compiled_graphs() - graphs == first_update
    assert (eager.online_weights.data - initial).abs().max() > 1e-3
    assert torch.allclose(compiled.online_weights.data, eager.online_weights.data, rtol=1e-4, atol=1e-6)


def test_compile_true_on_the_cpu_without_a_cpp_compiler_is_refused_in_one_line():
    from torch._inductor import config as inductor_config

    with inductor_config.patch({"cpp.cxx": (None, "/nonexistent/g++")}):  # where torch looks for one
        with pytest.raises(ConfigError, match=r"^compile=true on the CPU needs a C\+\+ compiler .*; or set compile=false$"):
            check_compiler(True, CPU)
        check_compiler(False, CPU)
        check_compiler(True, torch.device("cuda"))  # a GPU's kernels are not built with it
    with inductor_config.patch({"cpp.cxx": (None, "true")}):  # answers --version, builds nothing
        with pytest.raises(ConfigError, match=r"^compile=true on the CPU needs a working C\+\+ compiler, and true "
                                              r"could not build a test file \(no library written\); .*compile=false$"):
            check_compiler(True, CPU)
    assert inductor_config.cpp.cxx == (None, os.environ.get("CXX", "g++"))


def test_the_small_cnn_learner_covers_one_convolution_and_a_plain_head_only():
    small = NatureCNNConfig(channels=[16], kernel_sizes=[3], strides=[1], hidden_size=32)
    assert FastCNNLearner.covers(NatureCNN((10, 10, 4), np.bool_, 3, small), "huber")
    assert not FastCNNLearner.covers(NatureCNN((10, 10, 4), np.bool_, 3, small), "l1")
    dueling = NatureCNNConfig(channels=[16], kernel_sizes=[3], strides=[1], hidden_size=32, dueling=True)
    for network in (NatureCNN((4, 84, 84), np.uint8, 3, NatureCNNConfig()), NatureCNN((10, 10, 4), np.bool_, 3, dueling),
                    MLPQNetwork(5, 3, [16], "relu")):
        assert not FastCNNLearner.covers(network, "huber")


def test_evaluations_use_a_forward_pass_that_gives_the_modules_own_q_values():
    """Periodic and final evaluations score the network as a module would; the MLP learner's pass
    is used for speed because it gives the same bits, the CNN learner's (within 1e-6) is not."""
    mlp = DQNAgent(MLPQNetwork(5, 3, [16, 16], "relu"), agent_config(optimizer=AdamConfig()), CPU)
    assert mlp.eval_q == mlp.learner.online_q  # the same bound method
    with torch.no_grad():
        for size in (1, 10, 100):
            obs = torch.randn(size, 5)
            assert torch.equal(mlp.eval_q(obs), mlp.online(obs))
    cnn = DQNAgent(NatureCNN((10, 10, 4), np.bool_, 6, small_image_cnn("relu")),
                   agent_config(optimizer=RMSpropConfig(lr=1e-3)), CPU)
    assert isinstance(cnn.learner, FastCNNLearner) and cnn.eval_q is cnn.online


def test_cuda_graph_changes_nothing_on_the_cpu():
    torch.manual_seed(0)
    agent = DQNAgent(MLPQNetwork(5, 3, [16, 16], "relu"), agent_config(optimizer=AdamConfig(), cuda_graph=True), CPU)
    assert type(agent.learner) is FastMLPLearner


def _graph_twins(network: torch.nn.Module, optimizer=None):
    cuda = torch.device("cuda")
    optimizer = optimizer or AdamConfig(lr=1e-3)
    make = lambda graph: DQNAgent(copy.deepcopy(network),  # noqa: E731
                                  agent_config(optimizer=optimizer, gamma=0.99, cuda_graph=graph), cuda)
    graphed, eager = make(True), make(False)
    assert isinstance(graphed.learner, CUDAGraphLearner) and not isinstance(eager.learner, CUDAGraphLearner)
    return graphed, eager


def _cuda_batch(seed: int, obs_shape: tuple, size: int = 32, **fields) -> Batch:
    g = torch.Generator().manual_seed(seed)
    batch = _batch(seed, size, **fields)
    images = lambda: torch.randint(0, 256, (size, *obs_shape), generator=g).float()  # noqa: E731
    batch = batch._replace(obs=images(), next_obs=images()) if len(obs_shape) > 1 else batch
    return Batch(*(field.cuda() if isinstance(field, torch.Tensor) else field for field in batch))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a CUDA graph needs a GPU (run on one by hand)")
@pytest.mark.parametrize("case", ["nature_cnn", "mlp_weighted_discounted_clipped", "mlp_adamw"])
def test_a_cuda_graph_takes_the_steps_the_eager_update_takes(case):
    """Bit for bit for an MLP; for the Nature CNN, within rounding (the graph's convolutions
    rounded differently from the eager ones on an H200: docs/atari.md)."""
    torch.manual_seed(0)
    if case == "nature_cnn":
        graphed, eager = _graph_twins(NatureCNN((4, 84, 84), np.uint8, 6, NatureCNNConfig()))
        shape, fields = (4, 84, 84), {}
    else:
        optimizer = AdamWConfig(lr=1e-2) if case == "mlp_adamw" else AdamConfig(lr=1e-2, max_grad_norm=0.5)
        graphed, eager = _graph_twins(MLPQNetwork(5, 3, [16, 16], "relu"), optimizer)
        shape, fields = (5,), {} if case == "mlp_adamw" else {"weights": True, "discounts": True}
    same = torch.equal if case != "nature_cnn" else lambda a, b: torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    for step in range(12):
        batch = _cuda_batch(step, shape, **fields)
        a, b = graphed.learn(batch), eager.learn(batch)
        assert same(a.q_taken, b.q_taken) and same(a.targets, b.targets), step
        if step % 4 == 3:
            graphed.update_target(), eager.update_target()
    assert same(graphed.online_weights.data, eager.online_weights.data)
    assert all(same(graphed.optimizer.state[k], eager.optimizer.state[k]) for k in eager.optimizer.state)
    kept = graphed.learn(_cuda_batch(99, shape, **fields))
    seen = kept.q_taken.clone()
    graphed.learn(_cuda_batch(100, shape, **fields))
    assert torch.equal(kept.q_taken, seen)  # the next replay leaves an update's results alone
