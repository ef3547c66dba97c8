"""prefetch=true: the next batch and its TD targets, prepared on a second core while this update runs.

At the MinAtar paper's settings (an update every step on one env) an update is about three quarters of
a step, and a step cannot be split across cores (acting needs the weights the update writes). What does
not need them is the next batch: its slots are drawn from the replay's own generator, and its TD targets
come from the target network, which changes only at a sync. So while this process updates, acts and
steps the env, a forked worker process gathers the next batch and runs the target network's pass on it.

The worker reads the replay and the target weights where this process keeps them (moved into shared
memory when it starts) and hands its result back through shared memory, each side watching a counter.
A request comes as an update starts, and the worker is done long before the update is, so neither side
sleeps in a run: the worker waits awake (yielding its core to anything else that wants it) for the next
request, and sleeps on a semaphore only when none comes for a while (an evaluation). A prefetched batch is
used only if nothing it depends on changed after it was drawn: the target weights (a sync), the slot
the step's new transition was written to, the ring's size. Otherwise this process throws it away and
samples again from the generator's state before the draw, so the batches and targets are the ones
sampling here would give, bit for bit. Checkpoints hold that earlier state too: a resumed run draws
the same batches.
"""

from __future__ import annotations

import multiprocessing
import logging
import os
import signal
import time
from typing import Callable, NamedTuple, Optional, Sequence

import numpy as np
import torch

from dqn_cli.replay.buffer import Batch, ReplayBuffer
from dqn_cli.replay.shared import shared_zeros

log = logging.getLogger("dqn_cli")

# ctl[] fields: the newest request, the newest result, stop
_REQUESTED, _DONE, _STOP = 0, 1, 2
# spins of the training process, waiting for a batch, between checks that the worker is alive
_SPINS_PER_CHECK = 20_000
# how long after a request the worker waits awake for the next one (a step takes about a millisecond);
# then it sleeps until woken, and checks that the training process is alive every _IDLE_CHECK_S
_SPIN_S = 0.002
_IDLE_CHECK_S = 0.5


class _Slot:
    """Where the worker writes one batch and its targets (two slots: one in use, one being filled)."""

    def __init__(self, batch_size: int, obs_shape: Sequence[int]):
        self.idx = shared_zeros(batch_size, np.int64)  # the request: which slots to gather
        self.fields = {"obs": shared_zeros((batch_size, *obs_shape), np.float32),
                       "actions": shared_zeros(batch_size, np.int64), "rewards": shared_zeros(batch_size, np.float32),
                       "next_obs": shared_zeros((batch_size, *obs_shape), np.float32),
                       "terminated": shared_zeros(batch_size, np.float32)}
        self.targets = shared_zeros(batch_size, np.float32)
        self.tensors = {name: torch.from_numpy(array) for name, array in self.fields.items()}

    def write(self, batch: Batch, targets: torch.Tensor) -> None:
        for name, array in self.fields.items():
            array[...] = getattr(batch, name).numpy()
        self.targets[...] = targets.numpy()

    def read(self) -> Batch:
        """The batch as tensors: the targets copied (the update's log keeps them), the rest shared."""
        return Batch(**self.tensors, indices=self.idx.copy(), targets=torch.from_numpy(self.targets.copy()))


class _Request(NamedTuple):
    number: int
    rng_state: dict  # the replay generator's state before this batch was drawn
    position: int  # the ring as it will be when the batch is used: after one more transition
    size: int
    target_version: int
    batch_size: int


class BatchPrefetcher:
    """`sample(batch_size)` as ReplayBuffer's, every batch with its TD targets (Batch.targets), the next
    one prepared by a worker process. For one-step uniform replay of one env sampled after every
    transition; `targets_of(batch)` is the learner's TD target, `target_version()` counts target syncs."""

    def __init__(self, replay: ReplayBuffer, obs_shape: Sequence[int], targets_of: Callable[[Batch], torch.Tensor],
                 target_weights: torch.Tensor, target_version: Callable[[], int]):
        self.replay, self.obs_shape = replay, tuple(obs_shape)
        self.targets_of, self.target_version = targets_of, target_version
        self.target_weights = target_weights
        self.pending: Optional[_Request] = None
        self.process: Optional[multiprocessing.Process] = None
        self.used = self.redrawn = 0  # prefetched batches taken, and thrown away
        self.failed = False  # the worker died: this process samples from then on

    # --- this process -------------------------------------------------------------------------------

    def sample(self, batch_size: int) -> Batch:
        if self.process is None and not self.failed:
            self._start(batch_size)
        batch = self._take_pending(batch_size)
        if batch is None:
            batch = self.replay.sample(batch_size)
            batch = batch._replace(targets=self.targets_of(batch))
        if not self.failed:
            self._request_next(batch_size)
        return batch

    def rng_state(self) -> dict:
        """The replay generator's state as sampling here would have left it (for checkpoints)."""
        return self.replay.rng.bit_generator.state if self.pending is None else self.pending.rng_state

    def forget_pending(self) -> None:
        """After a checkpoint is loaded: the batch drawn ahead belongs to the run before."""
        self.pending = None

    def _start(self, batch_size: int) -> None:
        self.replay.share_memory()
        self.target_weights.share_memory_()  # in place: the network's parameters stay views of it
        self.ctl = shared_zeros(3, np.int64)
        self.wake = multiprocessing.get_context("fork").Semaphore(0)  # a request waits for the worker
        self.slots = [_Slot(batch_size, self.obs_shape) for _ in range(2)]
        self.parent = os.getpid()
        self.process = multiprocessing.get_context("fork").Process(target=self._work, name="dqn-prefetch",
                                                                    daemon=True)
        self.process.start()

    def _request_next(self, batch_size: int) -> None:
        replay, number = self.replay, int(self.ctl[_REQUESTED]) + 1
        rng_state = replay.rng.bit_generator.state
        position, size = (replay.position + 1) % replay.capacity, min(replay.size + 1, replay.capacity)
        self.slots[number % 2].idx[...] = replay.draw_slots(batch_size, position, size)
        self.pending = _Request(number, rng_state, position, size, self.target_version(), batch_size)
        self.ctl[_REQUESTED] = number  # after the slots: x86 keeps stores in order
        self.wake.release()

    def _take_pending(self, batch_size: int) -> Optional[Batch]:
        request, self.pending = self.pending, None
        if request is None:
            return None
        replay, slot = self.replay, self.slots[request.number % 2]
        written = (request.position - 1) % replay.capacity  # the transition stored since the draw
        if ((replay.position, replay.size, request.target_version, request.batch_size)
                != (request.position, request.size, self.target_version(), batch_size)
                or written in slot.idx or not self._wait_for(request.number)):
            replay.rng.bit_generator.state = request.rng_state  # draw again, here
            self.redrawn += 1
            return None
        self.used += 1
        return slot.read()

    def _wait_for(self, number: int) -> bool:
        """Whether the worker answered request `number` (False: it died; this process samples from now on)."""
        spins = 0
        while self.ctl[_DONE] < number:
            os.sched_yield()  # on a shared core, let the worker run
            spins += 1
            if spins % _SPINS_PER_CHECK == 0 and not self.process.is_alive():
                log.warning(f"prefetch=true: the worker process (pid {self.process.pid}) exited with code "
                            f"{self.process.exitcode}; this process samples the batches from here on (the same ones)")
                self.process.join()  # reaped, not left a zombie
                self.failed, self.process = True, None
                return False
        return True

    def close(self) -> None:
        """Stop the worker (the end of the run, however it ends)."""
        if self.process is None:
            return
        self.ctl[_STOP] = 1
        self.wake.release()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.process = None

    # --- the worker process -------------------------------------------------------------------------

    def _work(self) -> None:
        # Ctrl-C reaches the whole process group: the training process stops the run and then this
        # worker. A SIGTERM (a scheduler's) ends it at once; so does its parent's death.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for name in ("SIGTERM", "SIGHUP"):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        ctl, done, asked = self.ctl, 0, time.perf_counter()
        while not ctl[_STOP]:
            number = int(ctl[_REQUESTED])
            if number == done:
                if time.perf_counter() - asked < _SPIN_S:
                    os.sched_yield()  # the next request is near: wait for it awake, yielding a shared core
                elif not self.wake.acquire(timeout=_IDLE_CHECK_S) and os.getppid() != self.parent:
                    return  # asleep until the next request (an evaluation, a checkpoint): a core left free
                continue
            asked = time.perf_counter()
            slot = self.slots[number % 2]
            batch = self.replay.gather(slot.idx.copy())
            slot.write(batch, self.targets_of(batch))
            ctl[_DONE] = done = number
