"""Checkpoints and summaries: plain containers of tensors, written atomically, loaded weights-only."""

from __future__ import annotations

import io
import json
import os
import random
import sys
from pathlib import Path
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, Optional

import numpy as np
import torch

from dqn_cli.errors import RunDirError

FORMAT = "dqn-cli/1"


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
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_json(path: Path, data: Dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=False) + "\n").encode())


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


def _step_of(path: Path) -> int:
    return int(path.stem.split("_")[1])


def prune_periodic(ckpt_dir: Path, keep: int) -> None:
    """Keep the newest `keep` periodic checkpoints (and their replays)."""
    for path in sorted(ckpt_dir.glob("step_*.pt"), key=_step_of)[:-keep]:
        path.unlink(missing_ok=True)
        (ckpt_dir / f"replay_{path.stem.split('_')[1]}.npz").unlink(missing_ok=True)


@dataclass
class Resumable:
    path: Path
    state: Dict[str, Any]
    replay: Optional[Dict[str, np.ndarray]]


def find_resumable(ckpt_dir: Path) -> Resumable:
    """The newest periodic checkpoint that loads (with its replay), falling back past broken ones."""
    for stale in ckpt_dir.glob(".*.tmp*"):  # half-written files of a process killed mid-write
        stale.unlink(missing_ok=True)
    candidates = sorted(ckpt_dir.glob("step_*.pt"), key=_step_of, reverse=True)
    if not candidates:
        raise RunDirError(f"nothing to resume in {ckpt_dir.parent}: no checkpoints/step_*.pt "
                          "(was it started by dqn-train?)")
    for path in candidates:
        try:
            state = load_checkpoint(path)
            replay_path = ckpt_dir / f"replay_{path.stem.split('_')[1]}.npz"
            replay = None
            if replay_path.is_file():
                with np.load(replay_path, allow_pickle=False) as data:
                    replay = {k: data[k] for k in data.files}
            return Resumable(path, state, replay)
        except (RunDirError, OSError, ValueError) as error:
            print(f"dqn-train: warning: {str(error).splitlines()[0]}; trying the previous checkpoint", file=sys.stderr)
    raise RunDirError(f"no readable checkpoint in {ckpt_dir} (tried {len(candidates)}); cannot resume")
