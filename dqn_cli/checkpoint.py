"""Checkpoints and summaries: plain containers of tensors, written atomically, loaded weights-only."""

from __future__ import annotations

import io
import json
import os
import random
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch

from dqn_cli.errors import RunDirError

FORMAT = "dqn-cli/1"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, fsync, then rename over it: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
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
