"""The README documents every setting, option and TensorBoard tag the code has."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dqn_cli import config, tb
from dqn_cli.hydra_errors import group_options

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def setting_keys() -> list:
    """Every key a user can set, as `group.key` / `key`, read off the schemas."""
    keys = []
    for field in dataclasses.fields(config.TrainConfig):
        if field.name in config.GROUP_SCHEMAS or field.name == "env":
            continue
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            keys += [f"{field.name}.{sub.name}" for sub in dataclasses.fields(default)]
        else:
            keys.append(field.name)
    for group, options in {"env": {"env": config.EnvConfig}, **config.GROUP_SCHEMAS}.items():
        for schema in options.values():
            keys += [f"{group}.{f.name}" for f in dataclasses.fields(schema) if f.name != "name"]
    keys += [f"env.atari.{f.name}" for f in dataclasses.fields(config.AtariConfig)]
    return keys


def test_every_config_key_is_documented():
    missing = [key for key in setting_keys() if f"`{key}`" not in README]
    assert not missing


def test_every_option_and_tag_is_documented():
    for group in ("env", "network", "buffer", "target", "optimizer", "exploration", "experiment"):
        for option in group_options(group):
            assert f"`{option}`" in README, f"{group}={option}"
    for tag in tb.ALL_SCALAR_TAGS:
        assert f"`{tag}`" in README, tag


def test_every_setting_has_a_description_in_the_typed_config():
    """The help is written from the docstrings under the fields: a field without one is drift."""
    from dqn_cli.help import every_key, schema_keys

    rows = every_key() + schema_keys("", config.EvalArgs)
    assert len(rows) > 60
    assert [key for key, _, doc in rows if not doc] == []


def test_train_help_lists_every_group_option_and_key_and_no_schema():
    from conftest import run_cli

    result = run_cli("dqn-train", ["--help"], Path.cwd())
    assert result.returncode == 0 and "powered by Hydra" not in result.stdout and "_schema" not in result.stdout
    for group in ("env", "network", "buffer", "target", "optimizer", "exploration", "experiment"):
        assert all(option in result.stdout for option in group_options(group))
    for key in setting_keys():
        assert f"  {key} " in result.stdout or f"  {key} (" in result.stdout, key
    assert "dqn-eval --help" in result.stdout and "dqn-report --help" in result.stdout
    for program in ("dqn-eval", "dqn-report"):
        other = run_cli(program, ["--help"], Path.cwd())
        assert other.returncode == 0 and "examples" in other.stdout.lower()
