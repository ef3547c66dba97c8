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

The worker draws the slots too, from its own copy of the replay's generator, and writes the copy's state
after each draw beside the batch. This process's generator stands still meanwhile: it is set to the
state before a draw only when it samples itself, and the worker's copy is set to this process's state
(a resync) with the next request after that.
"""

from __future__ import annotations

import multiprocessing
import logging
import os
import signal
import time
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch

from dqn_cli.replay.buffer import Batch, ReplayBuffer
from dqn_cli.replay.shared import shared_zeros

log = logging.getLogger("dqn_cli")

# ctl[] fields: the newest request, the newest result, stop
_REQUESTED, _DONE, _STOP = 0, 1, 2
# _Slot.request[] fields: the ring the slots are drawn from, whether to take the generator's state first
_POSITION, _SIZE, _RESYNC = 0, 1, 2
_LOW_64 = (1 << 64) - 1
# spins of the training process, waiting for a batch, between checks that the worker is alive
_SPINS_PER_CHECK = 20_000
# how long after a request the worker waits awake for the next one (a step takes about a millisecond);
# then it sleeps until woken, and checks that the training process is alive every _IDLE_CHECK_S
_SPIN_S = 0.002
_IDLE_CHECK_S = 0.5


def _pcg64_words(state: dict) -> list:
    """A PCG64 generator's state as six 64-bit words (for shared memory)."""
    inner = state["state"]
    return [inner["state"] & _LOW_64, inner["state"] >> 64, inner["inc"] & _LOW_64, inner["inc"] >> 64,
            state["has_uint32"], state["uinteger"]]


def _pcg64_state(words: np.ndarray) -> dict:
    state_low, state_high, inc_low, inc_high, has_uint32, uinteger = (int(word) for word in words)
    return {"bit_generator": "PCG64", "state": {"state": state_high << 64 | state_low, "inc": inc_high << 64 | inc_low},
            "has_uint32": has_uint32, "uinteger": uinteger}


class _Slot:
    """One request and the worker's answer: the batch as the learner prepared it (two slots: one in
    use, one being filled). `example`: a prepared batch, for the shapes."""

    def __init__(self, example: Batch):
        batch_size = len(example.actions)
        self.request = shared_zeros(3, np.int64)  # position, size, resync
        self.rng_resync = shared_zeros(6, np.uint64)  # with a resync: the state to draw from
        self.idx = shared_zeros(batch_size, np.int64)  # the slots drawn
        self.rng_after = shared_zeros(6, np.uint64)  # the worker's generator after drawing them
        self.holds_newest = shared_zeros(1, np.int64)  # whether they hold the slot the step writes
        self.fields = {name: shared_zeros(tuple(value.shape), value.numpy().dtype)
                       for name, value in example._asdict().items() if isinstance(value, torch.Tensor)}
        self.tensors = {name: torch.from_numpy(array) for name, array in self.fields.items()}

    def write(self, batch: Batch) -> None:
        for name, array in self.fields.items():
            array[...] = getattr(batch, name).numpy()

    def read(self) -> Batch:
        """The batch as tensors: the targets copied (the update's log keeps them), the rest shared."""
        return Batch(**{**self.tensors, "targets": self.tensors["targets"].clone()}, indices=self.idx.copy())


class _Request(NamedTuple):
    number: int
    position: int  # the ring as it will be when the batch is used: after one more transition
    size: int
    target_version: int
    batch_size: int
    rng_before: Optional[dict]  # the generator's state before the draw; None: the previous request's rng_after


class BatchPrefetcher:
    """`sample(batch_size)` as ReplayBuffer's, every batch as `prepare(batch)` (the learner's) leaves it:
    with its TD targets; the next one made by a worker process. For one-step uniform replay of one env
    sampled after every transition; `target_version()` counts target syncs."""

    def __init__(self, replay: ReplayBuffer, prepare: Callable[[Batch], Batch], target_weights: torch.Tensor,
                 target_version: Callable[[], int]):
        self.replay, self.prepare, self.target_version = replay, prepare, target_version
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
        taken = batch is not None
        if not taken:
            batch = self.prepare(self.replay.sample(batch_size))
        if not self.failed:
            self._request_next(batch_size, resync=not taken)
        return batch

    def rng_state(self) -> dict:
        """The replay generator's state as sampling here would have left it (for checkpoints)."""
        return self.replay.rng.bit_generator.state if self.pending is None else self._state_before(self.pending)

    def _state_before(self, request: _Request) -> dict:
        """The generator's state before `request`'s draw: after the draw of the previous request,
        which the worker answered (this process took its batch), unless this one came with a resync."""
        if request.rng_before is not None:
            return request.rng_before
        return _pcg64_state(self.slots[(request.number - 1) % 2].rng_after)

    def forget_pending(self) -> None:
        """After a checkpoint is loaded: the batch drawn ahead belongs to the run before."""
        self.pending = None

    def _start(self, batch_size: int) -> None:
        self.replay.share_memory()
        self.target_weights.share_memory_()  # in place: the network's parameters stay views of it
        self.ctl = shared_zeros(3, np.int64)
        self.wake = multiprocessing.get_context("fork").Semaphore(0)  # a request waits for the worker
        example = self.prepare(self.replay.gather(np.zeros(batch_size, np.int64)))
        self.slots = [_Slot(example) for _ in range(2)]
        self.parent = os.getpid()
        self.process = multiprocessing.get_context("fork").Process(target=self._work, name="dqn-prefetch",
                                                                    daemon=True)
        self.process.start()

    def _request_next(self, batch_size: int, resync: bool) -> None:
        """Ask for the next batch. `resync`: this process sampled the last batch itself, so the worker's
        generator takes this process's state first."""
        replay, number = self.replay, int(self.ctl[_REQUESTED]) + 1
        slot = self.slots[number % 2]
        position, size = (replay.position + 1) % replay.capacity, min(replay.size + 1, replay.capacity)
        rng_before = replay.rng.bit_generator.state if resync else None
        if resync:
            slot.rng_resync[...] = _pcg64_words(rng_before)
        slot.request[...] = (position, size, resync)
        self.pending = _Request(number, position, size, self.target_version(), batch_size, rng_before)
        self.ctl[_REQUESTED] = number  # after the request: x86 keeps stores in order
        self.wake.release()

    def _take_pending(self, batch_size: int) -> Optional[Batch]:
        request, self.pending = self.pending, None
        if request is None:
            return None
        replay, slot = self.replay, self.slots[request.number % 2]
        if ((replay.position, replay.size, request.target_version, request.batch_size)
                != (request.position, request.size, self.target_version(), batch_size)
                or not self._wait_for(request.number) or slot.holds_newest[0]):
            replay.rng.bit_generator.state = self._state_before(request)  # draw again, here
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
            self._answer(self.slots[number % 2])
            ctl[_DONE] = done = number

    def _answer(self, slot: _Slot) -> None:
        """Draw the slots (this process's replay generator is a copy), gather them, prepare the batch."""
        replay = self.replay
        position, size, resync = (int(value) for value in slot.request)
        if resync:
            replay.rng.bit_generator.state = _pcg64_state(slot.rng_resync)
        idx = replay.draw_slots(len(slot.idx), position, size)
        slot.idx[...] = idx
        slot.rng_after[...] = _pcg64_words(replay.rng.bit_generator.state)
        slot.holds_newest[0] = (position - 1) % replay.capacity in idx  # the transition stored since the request
        slot.write(self.prepare(replay.gather(idx)))
