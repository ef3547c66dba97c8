"""`dqn-train --help` and `dqn-eval --help`, written from the typed config: each key's default and
the docstring under its field, so the help cannot drift from the code."""

from __future__ import annotations

import ast
import dataclasses
import html
import inspect
import textwrap
from functools import lru_cache
from typing import Dict, List, Tuple

from omegaconf import MISSING

from dqn_cli import config as config_module
from dqn_cli.hydra_errors import group_options

GROUP_DEFAULTS = {"algorithm": "dqn", "env": "cartpole", "network": "auto", "buffer": "uniform", "target": "hard", "optimizer": "adam",
                  "exploration": "linear", "tracker": "none"}
OTHER_GROUPS = {"experiment": "tuned presets and the setups of DQN papers, tutorials and articles",
                "variant": "DQN extensions for variant studies (+variant=double ...)",
                "sweep": "ready-made sweeps (dqn-train -m +sweep=seeds5)"}


@lru_cache(maxsize=None)
def field_docs(schema: type) -> Dict[str, str]:
    """{field: the string literal written under it}, for a dataclass and its bases."""
    docs: Dict[str, str] = {}
    for cls in reversed(schema.__mro__):
        if not dataclasses.is_dataclass(cls):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
        for node, following in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)):
                docs[node.target.id] = " ".join(str(following.value.value).split())
    return docs


def _default(field: dataclasses.Field) -> str:
    if field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        value = field.default
    if value is MISSING or value == "":
        return "(required)"
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def schema_keys(prefix: str, schema: type) -> List[Tuple[str, str, str]]:
    """(key, default, description) of every setting of a schema, nested settings spelled out."""
    rows = []
    docs = field_docs(schema)
    for field in dataclasses.fields(schema):
        if field.name == "name" or field.name in config_module.GROUP_SCHEMAS or field.name == "env":
            continue
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            rows += schema_keys(f"{prefix}{field.name}.", type(default))
        elif field.name == "atari":
            rows.append((f"{prefix}atari", _default(field), docs.get(field.name, "")))
            rows += schema_keys(f"{prefix}atari.", config_module.AtariConfig)
        else:
            rows.append((f"{prefix}{field.name}", _default(field), docs.get(field.name, "")))
    return rows


def every_key() -> List[Tuple[str, str, str]]:
    """Every key a user can set, as the help lists it (options' own keys tagged with the option)."""
    rows = schema_keys("", config_module.TrainConfig) + schema_keys("env.", config_module.EnvConfig)
    for group, options in config_module.GROUP_SCHEMAS.items():
        seen: Dict[str, List[str]] = {}
        for option, schema in options.items():
            for key, default, doc in schema_keys(f"{group}.", schema):
                seen.setdefault(key, []).append(option)
                if len(seen[key]) == 1:
                    rows.append((key, default, doc))
        rows = [(key + ("" if key not in seen or len(seen[key]) == len(options) else
                        f" ({', '.join(seen[key])})"), default, doc) for key, default, doc in rows]
    return rows


def _table(rows: List[Tuple[str, str, str]], width: int = 100) -> List[str]:
    lines = []
    for key, default, doc in rows:
        head = f"  {key} = {default}"
        lines.append(head)
        if doc:
            lines += textwrap.wrap(doc, width, initial_indent="      ", subsequent_indent="      ")
    return lines


def train_help() -> str:
    groups = [f"  {group:<12} " + ", ".join(f"{o} (default)" if o == default else o for o in group_options(group))
              for group, default in GROUP_DEFAULTS.items()]
    groups += [f"  {group:<12} {', '.join(group_options(group))}\n{'':15}{what}" for group, what in OTHER_GROUPS.items()]
    return "\n".join([
        "dqn-train: train a Deep Q-Network on a Gymnasium environment, configured by Hydra groups and keys.",
        "Each run writes outputs/runs/<date>_<time>_<env>_seed<N>/ (config, TensorBoard events, checkpoints,",
        "summary.json); -m runs a sweep into outputs/sweeps/<date>_<time>_<env>/ and writes report.md there.",
        "",
        "Usage: dqn-train [group=option ...] [key=value ...]        dqn-train -m key=a,b,c [...]",
        "",
        "Config groups (group=option):",
        *groups,
        "",
        "Settings (key = default, then what it does); options' own keys name their option. Defaults are the",
        "schemas'; an option or preset may set others (`dqn-train ... --cfg job` prints the composed config):",
        *_table(every_key()),
        "",
        "Examples:",
        "  dqn-train                                   CartPole-v1 with the tuned defaults",
        "  dqn-train env=cartpole target=soft          polyak-averaged target network",
        "  dqn-train experiment=lunarlander seed=3     a tuned preset, one key changed",
        "  dqn-train -m seed=0,1,2,3,4 hydra/launcher=joblib    five seeds in parallel, then report.md",
        "  dqn-train resume=outputs/runs/<run> total_steps=80000    continue a run, or train it longer",
        "  dqn-train experiment=pytorch_tutorial --cfg job          print the composed config, do not train",
        "",
        "See also: dqn-eval --help (evaluate a finished run, record a video), dqn-report --help (aggregate",
        "runs and sweeps: mean, IQM, confidence intervals, plots), tensorboard --logdir outputs.",
    ])


def eval_help() -> str:
    return "\n".join([
        "dqn-eval: play a finished run's checkpoint greedily and write <run>/eval_<checkpoint>.json (optionally a",
        "video). Each checkpoint (and each other seed or episode count) keeps its own file.",
        "",
        "Usage: dqn-eval run=<run dir> [key=value ...]",
        "",
        "Settings (key = default, then what it does):",
        *_table(schema_keys("", config_module.EvalArgs)),
        "",
        "Examples:",
        "  dqn-eval run=outputs/runs/<run>                       best.pt, replaying summary.json's evaluation",
        "  dqn-eval run=outputs/runs/<run> checkpoint=last episodes=20 video=true",
        "  dqn-eval run=outputs/runs/<run> checkpoint=step_000000012000   a periodic checkpoint, by name or path",
    ])


def _cell(text: str, code: bool = False) -> str:
    """Text for a Markdown table cell that renders as written: <run> stays visible, |TD error| stays
    (inside a code span only the pipe needs escaping)."""
    return (text if code else html.escape(text, quote=False)).replace("|", "\\|")


def reference_markdown(plain: Dict[str, str]) -> str:
    """The configuration reference of the docs site: every group with its options, every key with
    what a plain `dqn-train` uses (`plain`: api.plain_defaults()), the schema's default where it
    differs, and its description."""
    lines = ["## Groups and their options", "", "| group | options (default in bold) |", "|---|---|"]
    for group in [*GROUP_DEFAULTS, *OTHER_GROUPS]:
        options = [f"**`{o}`**" if o == GROUP_DEFAULTS.get(group) else f"`{o}`" for o in group_options(group)]
        lines.append(f"| `{group}` | {', '.join(options)} |")
    lines += ["", "## Keys", "", "\"dqn-train uses\" is the value of a plain `dqn-train` (its groups' defaults "
              "and conf/config.yaml composed); where the schema's own default differs (an option or a preset may "
              "set another) it is beside it. Keys of an option other than the default show the schema's default. "
              "`dqn-train <overrides> --cfg job` prints the composed config of any command.", "",
              "| key | dqn-train uses | schema default | what it does |", "|---|---|---|---|"]
    for key, default, doc in every_key():
        name, _, options = key.partition(" (")
        where = f" ({options}" if options else ""
        used = plain.get(name, default)
        lines.append(f"| `{name}`{where} | `{_cell(used, code=True)}` | "
                     f"{'' if used == default else f'`{_cell(default, code=True)}`'} | "
                     f"{_cell(doc)} |")
    return "\n".join(lines) + "\n"
