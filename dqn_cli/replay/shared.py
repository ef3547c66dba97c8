"""Arrays in memory that a forked process shares: prefetch=true's worker reads the replay there."""

from __future__ import annotations

import mmap

import numpy as np


def shared_zeros(shape, dtype) -> np.ndarray:
    """An array in memory a forked process shares (an anonymous shared mapping), zeroed."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    return np.frombuffer(mmap.mmap(-1, max(size, 1)), dtype=dtype, count=int(np.prod(shape))).reshape(shape)


def shared_copy(array: np.ndarray) -> np.ndarray:
    copy = shared_zeros(array.shape, array.dtype)
    copy[...] = array
    return copy
