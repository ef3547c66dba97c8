"""Hydra's and OmegaConf's composition errors, reworded as one line that says what would be right."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import List, Optional, Sequence

from dqn_cli import config as config_module
from dqn_cli.errors import ConfigError, UserError

# Installed wheel: dqn_cli/conf; source checkout or editable install: <repo>/conf.
_PACKAGE_DIR = Path(__file__).resolve().parent
CONF_DIR = next(p for p in (_PACKAGE_DIR / "conf", _PACKAGE_DIR.parent / "conf") if p.is_dir())


def group_options(group: str) -> List[str]:
    """The YAML options of a config group (what a user may type after `group=`)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def check_group_choices(overrides: Sequence[str]) -> None:
    """Group choices Hydra would answer with a traceback, or take without a word: a group set to null,
    a typed schema picked as an option, experiment_env, which experiment and env pick, and deletions."""
    for override in overrides:
        if override.startswith("~"):  # Hydra's deletion: a group loses its option, a key falls back to the schema's
            key = override[1:].partition("=")[0]
            raise ConfigError(f"{override}: deleting a setting is not supported; set {key} to the value you want "
                              f"({key}=..., or for a group another option)")
        group, _, option = override.lstrip("+").partition("=")
        if group == "experiment_env":
            raise ConfigError(f"{override}: experiment_env is picked by experiment and env (conf/experiment_env/"
                              "<experiment>/<env>.yaml); set its keys directly, e.g. optimizer.lr=...")
        if not (CONF_DIR / group).is_dir():
            continue
        if option.lower() in ("null", "none", "~"):
            raise ConfigError(f"{group}={option}: the {group} group needs an option; choose one of: "
                              f"{', '.join(group_options(group))}")
        if option.endswith("_schema"):  # the typed schemas the options extend, not options themselves
            raise ConfigError(f"{group}={option} is not an option; choose one of: {', '.join(group_options(group))}")


def _schema_keys(class_name: str) -> List[str]:
    schema = getattr(config_module, class_name, None)
    if schema is None or not dataclasses.is_dataclass(schema):
        return []
    return [f.name for f in dataclasses.fields(schema) if f.name != "name"]


def _error_chain(error: BaseException) -> List[BaseException]:
    chain, link = [], error
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    return chain


def _kind(type_name: str) -> str:
    """A Python or OmegaConf type's name as a user reads it: int -> an integer."""
    return {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false", "list": "a list",
            "dict": "a mapping"}.get(type_name.lower(), type_name)


def explain_hydra_error(error: BaseException) -> str:
    """One line for a composition error: a missing option, an unknown key, a value of the wrong type."""
    chain = _error_chain(error)
    own = next((e for e in chain if isinstance(e, UserError)), None)
    if own is not None:  # raised by one of our resolvers or schemas while Hydra composed
        return str(own)
    text = "\n".join(str(e) for e in chain)
    missing = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
    if missing:
        group, option = missing.groups()
        return f"{group}={option} is not an option; choose one of: {', '.join(group_options(group))}"
    unreadable = re.search(r"LexerNoViableAltException: ([^=\s]+)=(.*)", text)
    if unreadable:
        key, value = unreadable.groups()
        return (f"{key}={value}: Hydra reads unquoted values in ASCII letters, digits and a few symbols only; quote "
                f"the value for Hydra and the shell: '{key}=\"{value}\"'")
    appended = re.search(r"Could not append to config. An item is already at '([^']+)'", text)
    if appended:
        key = appended.group(1)
        return f"+{key}: {key} is already a setting; set it without the leading +, e.g. {key}=<value>"
    override = re.search(r"(?:Could not override '|Error merging override )([^'=\s]+)", text)
    key = override.group(1) if override else next(
        (e.full_key for e in chain if getattr(e, "full_key", None)), "a setting")
    unknown = re.search(r"Key '([^']+)' (?:is )?not in (?:struct|'(\w+)')", text)
    if unknown and key.startswith("env.make_kwargs."):
        return f"{key} is a new key of a free-form setting: add it with a leading +, e.g. +{key}=<value>"
    if unknown:
        key = unknown.group(1) if key == "a setting" else key
        allowed = _schema_keys(unknown.group(2) or "")
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        source = re.search(r"In '([^']+)':", text)
        where = f" (in conf/{source.group(1)}.yaml)" if source and source.group(1) != "config" else ""
        return f"{key} is not a setting{where}{hint}"
    choice = re.search(r"Invalid value '([^']*)', expected one of \[([^\]]*)\]", text)
    if choice:
        return f"{key}={choice.group(1)!r} is not valid; choose one of: {choice.group(2)}"
    conversion = re.search(r"Value '(.*?)' of type '\w+' could not be converted to (\w+)", text)
    if conversion:
        value, kind = conversion.groups()
        return f"{key}={value!r} is not valid: expected {kind.lower()}"
    missing_value = re.search(r"Missing mandatory value: (\S+)", text)
    if missing_value:
        return f"{missing_value.group(1)} must be set, e.g. env=gym env.id=Acrobot-v1"
    shape = _wrong_shape(key, text, chain)
    if shape:
        return shape
    not_bool = re.search(r"Value '([^']*)' is not a valid bool", text)
    if not_bool:
        return f"{key}={not_bool.group(1)!r} is not valid: expected true or false"
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _wrong_shape(key: str, text: str, chain: List[BaseException]) -> Optional[str]:
    """A value of the wrong shape: null where a value is needed, a list where one value is, a scalar
    where a list or a mapping is, a list item of the wrong type."""
    not_optional = re.search(r"field '[^']+' is not Optional", text)
    if not_optional:
        return f"{key}=null: {key} needs a value; set it to one, or leave it out for the default"
    not_a_string = re.search(r"Cannot convert '(\w+)' to string", text)
    if not_a_string:
        return (f"{key} takes one value, not {_kind(not_a_string.group(1))}; quote a value with brackets or "
                f"commas: '{key}=\"...\"'")
    not_a_mapping = re.search(r"Cannot merge DictConfig with (\w+)Config|Cannot assign (\w+) to Dict\[", text)
    if not_a_mapping:
        given = _kind(not_a_mapping.group(1) or not_a_mapping.group(2))
        return f"{key} is a mapping, not {given}; set its keys one by one: +{key}.<name>=<value>"
    not_a_list = re.search(r"Invalid value assigned: \w+ is not a ListConfig", text)
    if not_a_list:
        return f"{key} takes a list, written in brackets and quoted for the shell: '{key}=[...]'"
    wrong_item = re.search(r"Invalid type assigned: (\w+) is not a subclass of (\w+)", text)
    if wrong_item:
        item = next((e.full_key for e in chain if getattr(e, "full_key", None)), key)
        given = "null" if wrong_item.group(1) == "NoneType" else _kind(wrong_item.group(1))
        return f"{item} is {given}; each item of {key} must be {_kind(wrong_item.group(2))}"
    return None
