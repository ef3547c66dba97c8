"""Tier 2: every option of every group, and every preset, composes into a valid typed config."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra.errors import HydraException

from conftest import compose_typed
from dqn_cli.compose import register_schemas
from dqn_cli.config import from_dict, to_dict
from dqn_cli.hydra_errors import explain_hydra_error, group_options
from dqn_cli.errors import ConfigError

GROUPS = ["env", "network", "buffer", "target", "optimizer", "exploration", "experiment"]

register_schemas()


def test_default_composes_to_cartpole_with_hard_target():
    cfg = compose_typed([])
    assert cfg.env.id == "CartPole-v1" and cfg.target.name == "hard" and cfg.network.name == "auto"


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_option_composes_and_validates(group, option):
    extra = ["env.id=Acrobot-v1"] if (group, option) == ("env", "gym") else []
    cfg = compose_typed([f"{group}={option}", *extra])
    if (group, option) == ("env", "gym"):
        assert cfg.env.id == "Acrobot-v1" and cfg.env.solve_threshold is None
    elif group == "env":  # MinAtar games have no solved score; compare with the paper's curves
        assert cfg.env.id and (cfg.env.solve_threshold is not None) != option.startswith("minatar_")
    elif group != "experiment":
        assert getattr(cfg, group).name == option  # the option's own schema class was applied


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_option_survives_a_checkpoint_round_trip(group, option):
    """A checkpoint stores the config as plain data; resume rebuilds it by each group's `name`."""
    extra = ["env.id=Acrobot-v1"] if (group, option) == ("env", "gym") else []
    cfg = compose_typed([f"{group}={option}", *extra])
    assert from_dict(to_dict(cfg)) == cfg


def test_every_group_has_the_options_the_docs_promise():
    assert set(group_options("env")) >= {"cartpole", "acrobot", "mountaincar", "lunarlander"}
    assert set(group_options("network")) >= {"auto", "mlp", "dueling", "nature_cnn"}
    assert set(group_options("target")) >= {"hard", "soft"}
    assert set(group_options("optimizer")) >= {"adam", "adamw", "rmsprop", "sgd"}
    assert set(group_options("exploration")) >= {"linear", "exponential", "constant"}
    assert set(group_options("experiment")) >= {"cartpole", "pytorch_tutorial", "book_cartpole",
                                                "lunarlander_article"}


def test_presets_carry_their_reference_values():
    tutorial = compose_typed(["experiment=pytorch_tutorial"])
    assert tutorial.optimizer.name == "adamw" and tutorial.optimizer.amsgrad and tutorial.optimizer.lr == 1e-4
    assert tutorial.target.name == "soft" and tutorial.target.tau == 0.005
    assert tutorial.exploration.name == "exponential" and tutorial.optimizer.max_grad_value == 100
    assert tutorial.total_episodes == 600 and tutorial.exploration.unit == "step"
    book = compose_typed(["experiment=book_cartpole"])
    assert book.env.reward_scale == 0.01 and book.gamma == 0.98 and book.batch_size == 32
    assert (book.train_freq, book.train_freq_unit, book.gradient_steps, book.learning_starts) == (1, "episode", 10, 2000)
    assert (book.target.interval, book.target.interval_unit) == (20, "episode") and book.loss == "huber"
    assert (book.exploration.unit, book.exploration.start, book.exploration.end, book.exploration.steps) == \
        ("episode", 0.08, 0.01, 1400)
    v0 = compose_typed(["experiment=book_cartpole_v0"])
    assert (v0.env.id, v0.total_episodes, v0.loss, v0.exploration.epsilon, v0.buffer.capacity) == \
        ("CartPole-v0", 300, "mse", 0.1, 10_000)
    assert (v0.target.interval, v0.target.interval_unit, v0.optimizer.lr, v0.gamma, v0.batch_size) == \
        (20, "episode", 5e-4, 0.98, 32)
    article = compose_typed(["experiment=lunarlander_article"])
    assert article.env.id == "LunarLander-v3" and article.target.interval == 1000 and article.batch_size == 64
    assert article.total_episodes == 1000 and article.exploration.epsilon == 0.0


def test_command_line_beats_preset():
    cfg = compose_typed(["experiment=pytorch_tutorial", "optimizer.lr=0.5", "seed=7"])
    assert cfg.optimizer.lr == 0.5 and cfg.seed == 7


def test_checkpoint_config_round_trip():
    cfg = compose_typed(["network=dueling", "optimizer=rmsprop", "exploration=constant"])
    assert from_dict(to_dict(cfg)) == cfg
    plain = to_dict(cfg)  # what checkpoints store: weights-only loading accepts no Enum objects
    assert type(plain["loss"]) is str and type(plain["network"]["activation"]) is str


def test_every_choice_the_config_offers_has_an_implementation():
    """The names live in the config (torch-free); the implementations are looked up by them."""
    from dqn_cli.config import Activation, Loss
    from dqn_cli.learners.fast_mlp import _LOSS_GRADIENTS
    from dqn_cli.learners.update import LOSSES
    from dqn_cli.networks import ACTIVATIONS

    assert [m.value for m in Loss] == list(LOSSES) and [m.value for m in Activation] == list(ACTIVATIONS)
    assert set(_LOSS_GRADIENTS) <= set(LOSSES)


def test_the_config_and_every_help_page_load_without_torch():
    code = ("import sys, dqn_cli.config, dqn_cli.help, dqn_cli.cli, dqn_cli.compose, dqn_cli.hydra_errors; "
            "print(sorted(m for m in ('torch', 'gymnasium', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_range_check_also_guards_direct_construction():
    from dqn_cli.config import AdamConfig, EnvConfig, SoftTargetConfig

    for make, key in ((lambda: EnvConfig(num_envs=0), "env.num_envs"), (lambda: AdamConfig(lr=-1), "optimizer.lr"),
                      (lambda: SoftTargetConfig(tau=2), "target.tau")):
        with pytest.raises(ConfigError, match=key):
            make()


@pytest.mark.parametrize("overrides,expected", [
    (["env=nosuch"], "env=nosuch is not an option; choose one of: acrobot, breakout, cartpole"),
    (["optimizer.lrr=1"], "optimizer.lrr is not a setting; allowed keys here: lr,"),
    (["total_steps=abc"], "total_steps='abc' is not valid: expected integer"),
    (["optimizer=sgd", "optimizer.amsgrad=true"], "optimizer.amsgrad is not a setting"),
    (["double_q=maybe"], "double_q='maybe' is not valid: expected true or false"),
    (["loss=l1"], "loss='l1' is not valid; choose one of: huber, mse"),
    (["network.activation=swish"], "network.activation='swish' is not valid; choose one of: relu, tanh, elu"),
    (["log.progress=fancy"], "log.progress='fancy' is not valid; choose one of: auto, bar, lines, off"),
    (["batch_size=null"], "batch_size=null: batch_size needs a value; set it to one, or leave it out for the default"),
    (["eval.stop_when_solved=null"], "eval.stop_when_solved=null: eval.stop_when_solved needs a value"),
    (["network=mlp", "network.hidden_sizes=64"], "network.hidden_sizes takes a list, written in brackets"),
    (["network=mlp", "network.hidden_sizes=[64,null]"],
     "network.hidden_sizes[1] is null; each item of network.hidden_sizes must be an integer"),
    (["optimizer.betas=[0.9,null]"], "optimizer.betas[1] is null; each item of optimizer.betas must be a number"),
    (["env.id=[a,b]"], "env.id takes one value, not a list; quote a value with brackets or commas"),
    (["env.make_kwargs=5"], "env.make_kwargs is a mapping, not an integer; set its keys one by one: +env.make_kwargs."),
    (["env.make_kwargs=[1]"], "env.make_kwargs is a mapping, not a list"),
    (["optimizer.lr={a:1}"], "optimizer.lr=\"{'a': 1}\" is not valid: expected float"),
])
def test_composition_errors_become_one_clear_line(overrides, expected):
    with pytest.raises(HydraException) as caught:
        compose_typed(overrides)
    message = explain_hydra_error(caught.value)
    assert message.startswith(expected) and "\n" not in message


@pytest.mark.parametrize("overrides", [["tracker=wandb", "tracker.project="], ["tracker=mlflow", "tracker.tracking_uri= "],
                                       ["tracker=mlflow", "tracker.experiment="], ["env.import_module="], ["device="]])
def test_an_empty_text_setting_is_refused_not_taken_for_the_default(overrides):
    """`tracker.project=` would log to $WANDB_PROJECT or dqn-cli without a word, as null does."""
    with pytest.raises(ConfigError) as caught:
        compose_typed(overrides)
    key = overrides[-1].partition("=")[0]
    assert str(caught.value) == f"{key}=: needs a value; give one, or leave it out for the default"


@pytest.mark.parametrize("overrides,key", [
    (["gamma=1.5"], "gamma=1.5"), (["buffer.capacity=0"], "buffer.capacity=0"),
    (["target=soft", "target.tau=0"], "target.tau=0.0"),
    (["exploration.end=-0.1"], "exploration.end=-0.1"), (["env.num_envs=0"], "env.num_envs=0"),
    (["env.reward_scale=0"], "env.reward_scale=0.0"), (["env.reward_scale=-1"], "env.reward_scale=-1.0"),
    (["batch_size=500", "buffer.capacity=100"], "buffer.capacity=100"),
    (["env=gym"], "env.id must be set"),
    (["cuda_graph=true", "optimizer=rmsprop"], "optimizer='rmsprop'"),
    (["cuda_graph=true", "compile=true"], "compile=True"),
])
def test_range_errors_name_the_key_and_what_is_allowed(overrides, key):
    with pytest.raises(ConfigError) as caught:
        compose_typed(overrides)
    assert str(caught.value).startswith(key) and ("allowed" in str(caught.value) or "e.g." in str(caught.value))


@pytest.mark.parametrize("variant", group_options("variant"))
def test_every_variant_adds_its_extension(variant):
    cfg = compose_typed([f"+variant={variant}"])
    expected = {"vanilla": (False, "auto", "uniform", 1), "double": (True, "auto", "uniform", 1),
                "dueling": (False, "dueling", "uniform", 1), "prioritized": (False, "auto", "prioritized", 1),
                "n_step": (False, "auto", "uniform", 3), "rainbow_lite": (True, "dueling", "prioritized", 3)}
    assert (cfg.double_q, cfg.network.name, cfg.buffer.name, cfg.buffer.n_step) == expected[variant]


@pytest.mark.parametrize("overrides,key", [
    (["env.solve_threshold=nan"], "env.solve_threshold"), (["optimizer.lr=inf"], "optimizer.lr"),
    (["optimizer.weight_decay=inf"], "optimizer.weight_decay"), (["env.reward_scale=nan"], "env.reward_scale"),
    (["env.reward_scale=-inf"], "env.reward_scale"), (["buffer=prioritized", "buffer.eps=inf"], "buffer.eps"),
    (["exploration.end=nan"], "exploration.end"), (["optimizer.betas=[0.9,nan]"], "optimizer.betas"),
    (["network=dueling", "network.head_hidden_size=-1"], "network.head_hidden_size")])
def test_values_that_are_not_real_numbers_or_negative_widths_are_refused_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose_typed(overrides)
