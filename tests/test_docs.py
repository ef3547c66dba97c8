"""The docs document every setting, option and TensorBoard tag the code has; the site builds
strictly; the commands they mark runnable run; no page speaks of the project's internals."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dqn_cli import config, tb
from dqn_cli.hydra_errors import group_options

import json
import re
import shlex
import subprocess
import sys

import pytest

from conftest import TINY, run_cli

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
PAGES = {path.relative_to(REPO).as_posix(): path.read_text() for path in [REPO / "README.md",
                                                                        *sorted((REPO / "docs").glob("*.md"))]}


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


def test_the_configuration_reference_has_every_key_and_option():
    """The reference page is generated from the schemas; this compares it with them."""
    from dqn_cli.api import plain_defaults
    from dqn_cli.help import reference_markdown

    reference = reference_markdown(plain_defaults())
    assert [key for key in setting_keys() if f"`{key}`" not in reference] == []
    for group in ("env", "network", "buffer", "target", "optimizer", "exploration", "tracker", "experiment"):
        for option in group_options(group):
            assert f"`{option}`" in reference, f"{group}={option}"


def test_every_tensorboard_tag_is_documented():
    assert [tag for tag in tb.ALL_SCALAR_TAGS if f"`{tag}`" not in PAGES["docs/getting-started.md"]] == []


def test_no_page_speaks_of_issues_sessions_or_reference_numbers():
    pattern = re.compile(r"reference 00\d|issue #\d|this session|an earlier build", re.IGNORECASE)
    assert {name: pattern.findall(text) for name, text in PAGES.items() if pattern.search(text)} == {}


def test_readme_is_short():
    assert len(README.encode()) <= 12_000


def test_the_docs_site_builds_strictly(tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                            cwd=REPO, capture_output=True, text=True, env={**__import__("os").environ,
                                                                           "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    reference = (tmp_path / "site" / "configuration" / "index.html").read_text()
    assert "optimizer.lr" in reference and "configuration reference: generated" not in reference
    # every key renders as written: <run> is text, not a swallowed tag; |TD error| keeps its bars
    assert "dqn-train resume=outputs/runs/&lt;run&gt;" in reference and "Added to |TD error| so" in reference
    # what a plain dqn-train uses, with the schema's default beside it where they differ
    for key, used, schema in (("env.num_envs", "16", "1"), ("env.solve_threshold", "475.0", "null")):
        assert re.search(rf"<code>{re.escape(key)}</code></td>\s*<td><code>{used}</code></td>\s*"
                         rf"<td><code>{schema}</code></td>", reference), key


def runnable_commands() -> list:
    """(page, line) of every command in a code block marked `<!-- runnable -->`."""
    commands = []
    for name, text in PAGES.items():
        for block in re.findall(r"<!-- runnable -->\s*```bash\n(.*?)```", text, re.DOTALL):
            for line in block.splitlines():
                command = line.split(" #")[0].strip()
                if command:
                    commands.append((name, command))
    return commands


@pytest.mark.parametrize("page", sorted({name for name, _ in runnable_commands()}))
def test_every_runnable_command_runs_as_written(page: str, workdir: Path):
    """Each command of the page, in order, with a tiny budget added to each training run and the
    placeholders filled with the run and sweep it made."""
    for _, command in [c for c in runnable_commands() if c[0] == page]:
        args = shlex.split(command)
        program, args = args[0], args[1:]
        if program not in ("dqn-train", "dqn-eval", "dqn-report"):
            continue  # e.g. tensorboard, a server
        runs = sorted((workdir / "outputs" / "runs").glob("*"))
        sweeps = sorted((workdir / "outputs" / "sweeps").glob("*"))
        args = [a.replace("outputs/runs/<run-dir>", str(runs[-1]) if runs else a)
                 .replace("outputs/sweeps/<sweep-dir>", str(sweeps[-1]) if sweeps else a) for a in args]
        if program == "dqn-train" and "--help" not in args:
            first = next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))
            args = [*args[:first], *TINY, *args[first:]]  # beside the overrides (Hydra wants them together)
        result = run_cli(program, args, workdir)
        assert result.returncode == 0, f"{page}: {command}\n{result.stderr[-2000:]}"


def runnable_python() -> list:
    """(page, index, code) of every Python block marked `<!-- runnable-python -->`."""
    return [(name, index, block) for name, text in PAGES.items()
            for index, block in enumerate(re.findall(r"<!-- runnable-python -->\s*```python\n(.*?)```", text, re.DOTALL))]


@pytest.mark.slow
@pytest.mark.parametrize("page,index,code", runnable_python(), ids=lambda v: str(v) if isinstance(v, int) else None)
def test_every_python_example_runs_as_a_script(page: str, index: int, code: str, workdir: Path):
    """Each worked example of the page (docs/extending.md), as a script of its own in a fresh folder."""
    script = workdir / "example.py"
    script.write_text(code)
    result = subprocess.run([sys.executable, str(script)], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{page} example {index + 1}:\n{result.stderr[-3000:]}"


def test_the_extending_page_has_an_example_of_each_part():
    examples = [code for name, _, code in runnable_python() if name == "docs/extending.md"]
    for table in ("networks.NETWORKS", "update.LOSSES", "gym.register", "replay.REPLAYS", "trackers.TRACKERS"):
        assert any(table in code for code in examples), table


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


def documented_train_commands() -> list:
    """Every `dqn-train ...` line of a bash block in the README and the docs (continuations joined),
    and the command of every published table (docs/results/published.json)."""
    published = json.loads((REPO / "docs" / "results" / "published.json").read_text())["tables"]
    commands = [("docs/results/published.json", row["command"]) for row in published]
    for name, text in PAGES.items():
        for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                command = line.split(" #")[0].strip()
                if command.startswith("dqn-train"):
                    commands.append((name, command))
    return commands


def test_every_documented_train_command_composes():
    """The equivalent check for the commands not run as written (long runs, clusters): each one's
    config composes and validates (a sweep's first value of each list; runs and placeholders aside)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from dqn_cli.compose import register_schemas, typed_config
    from dqn_cli.hydra_errors import CONF_DIR

    register_schemas()
    checked = 0
    for page, command in documented_train_commands():
        args = [a for a in shlex.split(command)[1:] if not a.startswith("-") and a != "job"]
        if any("<" in a or a.startswith("resume=") or a == "hydra/launcher=ray" for a in args):
            continue  # a placeholder, a run that exists elsewhere, a launcher with its own environment
        args = [a.split(",")[0] if "=" in a and "," in a else a for a in args]
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            composed = compose(config_name="config", overrides=args, return_hydra_config=True)
        with open_dict(composed):
            del composed["hydra"]
        typed_config(composed)  # raises, naming the key, if the documented command is wrong
        checked += 1
    assert checked >= 20
