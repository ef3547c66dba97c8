"""Checkpoints and summaries: plain containers of tensors, written atomically, loaded weights-only."""

from __future__ import annotations

import fcntl
import io
import json
import logging
import math
import os
import random
import re
from pathlib import Path
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, Optional

import numpy as np
import torch

from dqn_cli.errors import RunDirError

FORMAT = "dqn-cli/1"
log = logging.getLogger("dqn_cli")


def atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Let `write` fill a temp file beside `path`, fsync, then rename it over `path`: readers
    never see half a file, and a failed write leaves the previous file as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:  # a full disk names no file: say which one could not be written
        if error.filename is None:
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def finite_json(data: Any, where: str = "", replaced: Optional[Dict[str, str]] = None) -> Any:
    """`data` with NaN and inf (which JSON has no words for) written as null; `replaced` collects
    where each was, so the file can say why."""
    if isinstance(data, dict):
        return {key: finite_json(value, f"{where}{key}.", replaced) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_json(value, f"{where}{i}.", replaced) for i, value in enumerate(data)]
    if isinstance(data, float) and not math.isfinite(data):
        if replaced is not None:
            replaced[where.rstrip(".")] = str(data)
        return None
    return data


def atomic_write_json(path: Path, data: Dict[str, Any]) -> None:
    """JSON that every reader parses: non-finite numbers become null, listed under "non_finite"."""
    replaced: Dict[str, str] = {}
    data = finite_json(data, replaced=replaced)
    if replaced:
        data["non_finite"] = {"note": "these values were NaN or inf, which JSON cannot hold: written as null",
                              **replaced}
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n").encode())


def save_checkpoint(path: Path, state: Dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> Dict[str, Any]:
    """Load a dqn-cli checkpoint; anything truncated, foreign or holding pickled objects is refused."""
    if not path.is_file():
        raise RunDirError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for truncated / foreign files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunDirError(f"checkpoint {path} is unreadable (truncated, corrupt or not weights-only): "
                          f"{reason[:160]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise RunDirError(f"checkpoint {path} is not a dqn-cli checkpoint (expected format {FORMAT})")
    return state


def rng_state(np_rng: np.random.Generator) -> Dict[str, Any]:
    """Every RNG the training loop draws from, as plain containers and tensors."""
    return {
        "python": random.getstate(),
        "numpy": np_rng.bit_generator.state,
        "torch": torch.get_rng_state(),
    }


def restore_rng_state(state: Dict[str, Any], np_rng: np.random.Generator) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])


def _map_leaves(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """Apply `leaf` to everything inside nested dicts, lists and tuples."""
    if isinstance(value, dict):
        return {k: _map_leaves(v, leaf) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_leaves(v, leaf) for v in value)
    return leaf(value)


def _to_tensor(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    return value.item() if isinstance(value, np.generic) else value


def to_tensor_tree(value: Any) -> Any:
    """numpy arrays -> tensors (and numpy scalars -> Python numbers), so weights-only loading accepts them."""
    return _map_leaves(value, _to_tensor)


def to_numpy_tree(value: Any) -> Any:
    return _map_leaves(value, lambda leaf: leaf.numpy() if isinstance(leaf, torch.Tensor) else leaf)


def save_replay(path: Path, arrays: Dict[str, np.ndarray]) -> None:
    """The replay's filled rows as an uncompressed .npz (fast to write; plain arrays, no pickle),
    streamed to disk: an Atari replay of gigabytes is not copied in memory first."""
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def link_atomically(source: Path, target: Path) -> None:
    """Make `target` the same file as `source` (hard link, renamed into place: never half there)."""
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # file systems without hard links
        tmp.write_bytes(source.read_bytes())
    os.replace(tmp, target)


_PERIODIC = re.compile(r"step_(\d+)\.pt")
_REPLAY = re.compile(r"replay_(\d+)\.npz")


def periodic_checkpoints(ckpt_dir: Path) -> Dict[int, Path]:
    """step -> checkpoints/step_<step>.pt, newest first; files whose names are not ours are ignored."""
    found = {int(m.group(1)): p for p in ckpt_dir.glob("step_*.pt") if (m := _PERIODIC.fullmatch(p.name))}
    return dict(sorted(found.items(), reverse=True))


def kept_checkpoint(ckpt_dir: Path) -> str:
    """What a failed run leaves to resume from, truthfully."""
    if periodic_checkpoints(ckpt_dir):
        return f"the last good checkpoint is kept in {ckpt_dir}"
    return "no checkpoint had been written yet"


def replay_path(ckpt_dir: Path, step: int) -> Path:
    return ckpt_dir / f"replay_{step:012d}.npz"


def prune_periodic(ckpt_dir: Path, keep: int) -> None:
    """Keep the newest `keep` periodic checkpoints and their replays; delete older ones and any
    replay without its checkpoint (left by a kill between the two writes)."""
    kept = list(periodic_checkpoints(ckpt_dir))[:keep]
    for step, path in list(periodic_checkpoints(ckpt_dir).items())[keep:]:
        path.unlink(missing_ok=True)
    for path in ckpt_dir.glob("replay_*.npz"):
        match = _REPLAY.fullmatch(path.name)
        if match and int(match.group(1)) not in kept:
            path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temp_files(ckpt_dir: Path) -> None:
    """Half-written files of processes killed mid-write (never those of a live writer)."""
    for stale in ckpt_dir.glob(".*.tmp*"):
        pid = stale.name.rsplit(".tmp", 1)[1]
        if not pid.isdigit() or not _pid_alive(int(pid)):
            stale.unlink(missing_ok=True)


class RunDirLock:
    """Held while a process trains in a run dir, so a second one (a resume, a sweep job with the
    same overrides) is refused. It is an flock on `<run dir>/.lock`: the system drops it when the
    holder ends, however it ends, so a killed process's lock is taken over by the next one."""

    def __init__(self, run_dir: Path):
        self.run_dir, self.path, self.fd = run_dir, run_dir / ".lock", None

    def __enter__(self) -> "RunDirLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunDirError(f"{self.run_dir} is in use: process {holder} is training in it; wait for it to end "
                              "(or stop it) before resuming, or start a new run") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def training_in(run_dir: Path) -> bool:
    """Whether a process holds the run dir's RunDirLock now: it is training there (a resume that
    extends a finished run keeps that run's old summary.json until it ends)."""
    try:
        fd = os.open(run_dir / ".lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)  # and with it the shared lock, if this took one


@dataclass
class Resumable:
    path: Path
    state: Dict[str, Any]
    replay: Optional[Dict[str, np.ndarray]]


def _load_replay(path: Path) -> Optional[Dict[str, np.ndarray]]:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as error:  # numpy raises many types for truncated, empty or foreign files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunDirError(f"replay {path} is unreadable (truncated or corrupt): {reason[:160]}") from None


def find_resumable(ckpt_dir: Path) -> Resumable:
    """The newest periodic checkpoint that loads, with its replay, falling back past broken pairs."""
    remove_stale_temp_files(ckpt_dir)
    candidates = periodic_checkpoints(ckpt_dir)
    if not candidates:
        raise RunDirError(f"nothing to resume in {ckpt_dir.parent}: no checkpoints/step_*.pt "
                          "(was it started by dqn-train?)")
    for step, path in candidates.items():
        try:
            return Resumable(path, load_checkpoint(path), _load_replay(replay_path(ckpt_dir, step)))
        except (RunDirError, OSError, ValueError) as error:
            log.warning(f"{str(error).splitlines()[0]}; trying the previous checkpoint")
    raise RunDirError(f"no readable checkpoint in {ckpt_dir} (tried {len(candidates)}); cannot resume")
