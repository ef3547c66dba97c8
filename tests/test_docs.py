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
