"""Where Hydra stops: schemas and resolvers registered, the composed config typed (or a resumed
run's own config with new overrides on top), and the run dir claimed. The CLI and the Python API
both compose through here; below it, code sees TrainConfig and Paths only."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import re
import shutil
from pathlib import Path
from typing import Any, List, Optional, Sequence

from dqn_cli import config as config_module
from dqn_cli.errors import ConfigError, resume_argument
from dqn_cli.hydra_errors import explain_hydra_error

# Folders above a new run dir that this process created (outputs/, outputs/runs/), deepest last:
# a run refused before it trained removes them again if they are still empty.
_created_parents: List[Path] = []

# What Hydra and a run write into a run dir: a new run refuses a dir that holds any of them.
RUN_FILES = (".hydra", "checkpoints", "summary.json", "train.log", "multirun.yaml")

# Set for `--cfg`, `--info` and the like, which print and train nothing: no run dir is created.
print_only = False


@functools.lru_cache(maxsize=None)  # Hydra may resolve the run dir more than once: one answer per process
def claim_new_run_dir(name: str) -> str:
    """`name`, or `name_2`, `name_3`, ... : the first that this process creates itself, so two runs
    started in the same second never share a dir."""
    missing = [parent for parent in Path(name).parents if not parent.exists()]
    dangling = next((parent for parent in missing if parent.is_symlink()), None)
    if dangling is not None:
        raise ConfigError(f"{dangling} is a link to {os.readlink(dangling)}, which does not exist; create that folder "
                          "or remove the link")
    try:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create {error.filename or Path(name).parent} for the run dir "
                          f"({error.strerror or error}); run from a writable folder or set hydra.run.dir=<folder>") \
            from None
    _created_parents.extend(reversed(missing))
    for attempt in itertools.count(1):
        candidate = name if attempt == 1 else f"{name}_{attempt}"
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            continue
        except OSError as error:
            raise ConfigError(f"cannot create the run dir {candidate} ({error.strerror or error}); run from a "
                              "writable folder or set hydra.run.dir=<folder>") from None


def _given_run_dir(key: str, value: Any) -> Optional[str]:
    """resume=<dir> or reproduce=<dir> as a path; an empty one would quietly mean a new run."""
    if value is None:
        return None
    if not str(value).strip():
        raise ConfigError(f"{key}=: needs the dir of an earlier run, e.g. {key}=outputs/runs/<run>")
    return str(value)  # resume=5 is a dir named 5, not file descriptor 5 to os.path


def _run_dir(resume: Optional[str], fresh: str) -> str:
    """Hydra's run dir: a new one, or the resumed run's own dir, which must be a dqn-train run dir
    (checked before Hydra writes anything into it)."""
    resume = _given_run_dir("resume", resume)
    if resume is None:
        return fresh if print_only else claim_new_run_dir(fresh)
    if not os.path.isdir(resume):
        raise ConfigError(f"resume={resume}: no such run dir; pass the dir of an earlier run, e.g. "
                          "resume=outputs/runs/<run>")
    if not os.path.isdir(os.path.join(resume, "checkpoints")):
        inside = os.path.dirname(os.path.normpath(resume))  # a run's checkpoints/ (or another folder of it)
        in_a_run = os.path.isdir(os.path.join(inside, "checkpoints"))
        hint = f"; pass the run dir itself, resume={inside}" if in_a_run else ""
        raise ConfigError(f"resume={resume}: not a dqn-train run dir (no checkpoints/ in it){hint}")
    return resume


def _run_name(reproduce: Optional[str], fresh: str) -> str:
    """A reproduction is named after the run it reproduces: <its name without its date>_reproduced."""
    reproduce = _given_run_dir("reproduce", reproduce)
    if reproduce is None:
        return fresh
    original = Path(reproduce.rstrip("/")).name
    return re.sub(r"^\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_", "", original) + "_reproduced"


@functools.lru_cache(maxsize=None)
def env_name(env_choice: str, env_id: str) -> str:
    """What run and sweep dirs are named after: the env group (cartpole), or, for an env.id that is not
    the group's own (env=gym env.id=MountainCar-v0), the id itself (mountaincar-v0)."""
    from omegaconf import OmegaConf

    from dqn_cli.hydra_errors import CONF_DIR

    group_file = CONF_DIR / "env" / f"{env_choice}.yaml"
    if not env_id or (group_file.is_file() and str(OmegaConf.load(group_file).get("id")) == env_id):
        return env_choice
    return re.sub(r"[^a-z0-9._-]+", "-", env_id.lower()).strip("-") or env_choice


# Overrides a run dir's name already says (env, seed) or that do not change what trains.
_NOT_IN_NAME = ("seed", "env", "env.id", "device", "torch_threads")
_NOT_IN_NAME_GROUPS = ("resume", "reproduce", "log", "tracker", "hydra")
MAX_CHANGES_BYTES = 80


def changed_by(overrides) -> List[str]:
    """The overrides that change what trains, beside the env and the seed: ['target=soft', ...]."""
    keys = [(str(o).lstrip("+"), str(o).lstrip("+~").split("=", 1)[0]) for o in overrides or ()]
    return [o for o, key in keys if key not in _NOT_IN_NAME and re.split("[./]", key)[0] not in _NOT_IN_NAME_GROUPS]


def run_changes(overrides) -> str:
    """What a run's command line changed, for its dir's name, so runs tell apart in TensorBoard's run
    list: '_target-soft+optimizer.lr-3e-4', in characters Hydra reads unquoted (resume=<dir> needs no
    quotes); a long list is cut at an override and ends in a hash of the whole."""
    parts = [re.sub(r"[^A-Za-z0-9._:-]+", "-", re.sub(r"[\[\]{}()'\"]", "", o)).strip("-") for o in changed_by(overrides)]
    text = "+".join(parts)
    if len(text.encode()) > MAX_CHANGES_BYTES:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        text = text[:MAX_CHANGES_BYTES - 11].rsplit("+", 1)[0] + f"+..{digest}"
    return f"_{text}" if text else ""


MAX_NAME_BYTES = 255  # a file name's limit on Linux and macOS file systems


def job_dir_name(override_dirname: str, job_number) -> str:
    """A sweep job's dir: its overrides, key=value,... ; a list too long for one file name is cut
    at an override and numbered (`7_a=1,b=2,..._3f2a9c1e`): its full overrides stay in .hydra/."""
    if len(override_dirname.encode()) <= MAX_NAME_BYTES:
        return override_dirname
    digest = hashlib.sha1(override_dirname.encode()).hexdigest()[:8]
    kept = override_dirname.encode()[:MAX_NAME_BYTES - 40].decode(errors="ignore").rsplit(",", 1)[0]
    return f"{job_number}_{kept},..._{digest}"


def _train_help() -> str:
    from dqn_cli.help import train_help

    return train_help().replace("$", "$$")  # Hydra fills the help in as a string.Template


def register_schemas() -> None:
    """Store every schema in Hydra's ConfigStore (the YAML options extend them by name), and the
    resolvers conf/config.yaml uses."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    # resume=<dir> runs in that dir; its own .hydra/ (the original overrides) is kept untouched.
    OmegaConf.register_new_resolver("dqn_run_dir", _run_dir, replace=True)
    OmegaConf.register_new_resolver("dqn_hydra_subdir", lambda resume, now: f".hydra-resume/{now}" if resume
                                    else ".hydra", replace=True)
    OmegaConf.register_new_resolver("dqn_help", _train_help, replace=True)
    OmegaConf.register_new_resolver("dqn_job_dir", job_dir_name, replace=True)
    OmegaConf.register_new_resolver("dqn_run_name", _run_name, replace=True)
    OmegaConf.register_new_resolver("dqn_env_name", env_name, replace=True)
    OmegaConf.register_new_resolver("dqn_run_changes", run_changes, replace=True)

    store = ConfigStore.instance()
    store.store(name="train_schema", node=config_module.TrainConfig)
    store.store(group="env", name="env_schema", node=config_module.EnvConfig)
    for group, options in config_module.GROUP_SCHEMAS.items():
        for option, schema in options.items():
            store.store(group=group, name=f"{option}_schema", node=schema)


def typed_config(cfg) -> config_module.TrainConfig:
    """Hydra's composed config as a TrainConfig (the schemas' range checks run here)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as error:  # e.g. a mandatory value (???) left unset
        raise ConfigError(explain_hydra_error(error)) from None


def refuse_keys_the_config_lacks(composed, typed, prefix: str = "") -> None:
    """A key in the composed config (`+foo=1`, `+optimizer.momentum=0.9` with Adam) that the typed
    config has no field for would be dropped silently when converting: refuse it, naming the keys there are."""
    import dataclasses

    from omegaconf import DictConfig

    fields = [field.name for field in dataclasses.fields(typed)]
    for key in composed.keys():
        if key not in fields:
            where = f"{prefix.rstrip('.')}={typed.name}" if prefix and isinstance(getattr(typed, "name", None), str) \
                else (prefix.rstrip(".") or "the config")
            raise ConfigError(f"{prefix}{key}: not a setting of {where}, so it would be ignored; its keys: "
                              f"{', '.join(fields)}")
        value = getattr(typed, key)
        if dataclasses.is_dataclass(value) and isinstance(composed._get_node(key), DictConfig):
            refuse_keys_the_config_lacks(composed[key], value, f"{prefix}{key}.")


def refuse_another_env_id(env_choice: Optional[str], overrides: Sequence[str]) -> None:
    """env.id=<other> under a named env group (env=cartpole, the default) would train that env with the
    group's settings: its env count, its solve threshold, a run dir named after the group."""
    from omegaconf import OmegaConf

    from dqn_cli.hydra_errors import CONF_DIR

    new_ids = [o.split("=", 1)[1] for o in overrides if o.lstrip("+").split("=", 1)[0] == "env.id"]
    group_file = CONF_DIR / "env" / f"{env_choice}.yaml"
    if not new_ids or env_choice in (None, "gym") or not group_file.is_file():
        return
    group = OmegaConf.load(group_file)
    new_id, own_id = new_ids[-1], str(group.id)
    same_family = "/" in own_id and new_id.startswith(own_id.split("/")[0] + "/")  # ALE/<game>, MinAtar/<game>
    threshold_set = any(o.lstrip("+").startswith("env.solve_threshold=") for o in overrides)
    if new_id == own_id or (same_family and (group.solve_threshold is None or threshold_set)):
        return
    if same_family:
        raise ConfigError(f"env.id={new_id} under env={env_choice} would keep {own_id}'s solve_threshold "
                          f"({group.solve_threshold}); add env.solve_threshold=<a score for {new_id}> (or null)")
    raise ConfigError(f"env.id={new_id} under env={env_choice} would train it with {own_id}'s settings "
                      f"(num_envs {group.num_envs}, solve_threshold {group.solve_threshold}); for another Gymnasium "
                      f"env write env=gym env.id={new_id}")


def config_for_run(composed, overrides: Sequence[str], env_choice: Optional[str] = None) -> config_module.TrainConfig:
    """The config a run trains with: the composed one, typed; with resume=<dir>, the resumed run's
    own config with these overrides on top. `env_choice` (the env group) guards env.id."""
    if not composed.get("resume") and not composed.get("reproduce"):
        refuse_another_env_id(env_choice, overrides)
    if composed.get("reproduce"):
        typed = reproduced_config(composed, list(overrides))
    elif composed.get("resume"):
        # The fresh defaults are not this run's config (total_episodes=40 of a run with exploration.unit=episode
        # would fail their checks): type only the resumed run's own config with the overrides on top.
        typed = resumed_config(Path(composed.resume), list(overrides))
    else:
        # Before typing: a DQN-only key out of range (buffer.capacity=10) would be refused for its range.
        refuse_what_the_algorithm_does_not_use(composed.algorithm.name, overrides)
        typed = typed_config(composed)
        refuse_keys_the_config_lacks(composed, typed)
    return typed


# Keys only DQN reads, and what PQN has instead.
_DQN_ONLY = {"buffer": "keeps no replay buffer", "target": "has no target network",
             "double_q": "has no target network", "learning_starts": "learns from its first rollout",
             "checkpoint.save_replay": "keeps no replay buffer", "prefetch": "keeps no replay buffer to prefetch from",
             **{key: "fits each rollout in algorithm.epochs x algorithm.minibatches instead"
                for key in ("batch_size", "train_freq", "train_freq_unit", "gradient_steps")}}


def refuse_what_the_algorithm_does_not_use(algorithm: str, overrides: Sequence[str]) -> None:
    """A DQN-only key set on the command line with algorithm=pqn would be ignored: say so instead."""
    if algorithm != "pqn":
        return
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        reason = _DQN_ONLY.get(key) or _DQN_ONLY.get(key.split(".")[0])
        if reason:
            raise ConfigError(f"{key}: algorithm=pqn {reason}, so {key} would be ignored; drop it, or train with "
                              "algorithm=dqn")


def resumed_config(run_dir: Path, new_overrides: List[str]) -> config_module.TrainConfig:
    """The config saved in the run's newest checkpoint, with this command's overrides on top: a
    group choice (target=soft) takes that option's values, a key=value sets one value."""
    from hydra import compose
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from dqn_cli.checkpoint import find_resumable

    saved = find_resumable(run_dir / "checkpoints").state["config"]
    overrides = [o for o in OverridesParser.create().parse_overrides(new_overrides)
                 if o.key_or_group != "resume" and not o.key_or_group.startswith("hydra")]  # Hydra's own
    for override in overrides:
        if override.key_or_group in ("experiment", "variant", "sweep") or override.is_delete():
            raise ConfigError(f"resume: {override.input_line} cannot be applied to a run that exists; "
                              "set its keys one by one")
    groups = [o for o in overrides if o.key_or_group in config_module.GROUP_SCHEMAS or o.key_or_group == "env"]
    if groups:
        composed = OmegaConf.to_container(compose(config_name="config", overrides=[o.input_line for o in groups]))
        saved = {**saved, **{o.key_or_group: composed[o.key_or_group] for o in groups}}
    refuse_what_the_algorithm_does_not_use(saved.get("algorithm", {}).get("name", "dqn"),
                                           [o.input_line for o in overrides])
    try:
        merged = OmegaConf.structured(config_module.from_dict(saved))
        for override in overrides:
            if override not in groups:
                OmegaConf.update(merged, override.key_or_group, override.value(), force_add=override.is_add())
        typed = OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        raise ConfigError(explain_hydra_error(error)) from None
    refuse_keys_the_config_lacks(merged, typed)
    typed.resume = str(run_dir)
    return typed


# What a reproduction may set beside reproduce=: how it reports, not what it trains.
_REPRODUCE_MAY_SET = ("reproduce", "log", "tracker", "hydra")


def reproduced_config(composed, overrides: List[str]) -> config_module.TrainConfig:
    """The config the run in composed.reproduce trained with (its last checkpoint's), for a new run;
    this command's log and tracker settings on top."""
    from dqn_cli.checkpoint import load_checkpoint, periodic_checkpoints

    original, resume = Path(composed.reproduce), composed.get("resume")
    if resume:
        raise ConfigError(f"reproduce={original} starts a new run; drop resume={resume} (or drop reproduce= to "
                          "continue that run)")
    checkpoints = original / "checkpoints"
    if not checkpoints.is_dir():
        raise ConfigError(f"reproduce={original}: not a dqn-train run dir (no checkpoints/ in it); pass the dir of "
                          "an earlier run, e.g. reproduce=outputs/runs/<run>")
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key.split(".")[0].split("/")[0] not in _REPRODUCE_MAY_SET:
            raise ConfigError(f"reproduce={original} trains that run's config exactly, so {override} would change "
                              "it; drop it, or start a new run with that run's overrides and this one "
                              f"(cat {original / '.hydra' / 'overrides.yaml'})")
    saved = [checkpoints / "last.pt"] if (checkpoints / "last.pt").is_file() else \
        list(periodic_checkpoints(checkpoints).values())[:1]
    if not saved:
        raise ConfigError(f"reproduce={original}: no checkpoint holds its config ({checkpoints} has no last.pt "
                          "or step_*.pt)")
    typed = config_module.from_dict(load_checkpoint(saved[0])["config"])
    typed.resume, typed.reproduce = None, str(original)
    fresh = typed_config(composed)  # what this command sets of log and tracker: how the run reports
    typed.log, typed.tracker = fresh.log, fresh.tracker
    return typed


def refuse_a_used_run_dir(run_dir: Path, key: str = "hydra.run.dir") -> None:
    """A new run in a folder that already holds one would overwrite its .hydra/ files before anything
    else is checked: refuse first, naming the way to continue it."""
    used = [name for name in RUN_FILES if (run_dir / name).exists()]
    if used:
        raise ConfigError(f"{key}={run_dir}: already holds a run ({', '.join(used)}); continue it with "
                          f"{resume_argument(run_dir)}, or choose a new folder")


def remove_if_only_bookkeeping(run_dir: Path, bookkeeping: set) -> None:
    """A run refused before it trained leaves nothing behind: Hydra's own files go (a new run's folder
    was checked to hold none of them before), then the folder if that left it empty, and the empty
    folders above it that this process made. A run that wrote checkpoints or events keeps everything."""
    if not run_dir.is_dir() or any(entry.name in ("checkpoints", "summary.json", "final")
                                   or entry.name.startswith("events.out.") for entry in run_dir.iterdir()):
        return
    for entry in run_dir.iterdir():
        if entry.name in bookkeeping:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: the user's own files were there
        run_dir.rmdir()
    for parent in reversed(_created_parents):
        with contextlib.suppress(OSError):  # not empty: another run uses it
            parent.rmdir()
