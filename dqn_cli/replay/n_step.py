"""n-step returns as a wrapper around any replay, behind the same `add`."""

from __future__ import annotations

from typing import Optional

import numpy as np

from dqn_cli.replay.buffer import Batch, HasTDErrors, ReplayBuffer


class NStepAccumulator:
    """Turns one-step transitions into n-step ones, per env: the reward is the discounted sum of
    up to n rewards, the next observation the one n steps later, the bootstrap factor gamma^k
    for the k rewards summed. An episode's end (termination or truncation) flushes that env's
    pending starts with shorter sums; `terminated` is carried only if the episode terminated,
    so a time-limited end still bootstraps from its last observation."""

    def __init__(self, n: int, gamma: float, num_envs: int):
        self.n, self.gamma = n, gamma
        self.pending: list = [[] for _ in range(num_envs)]  # per env: [(obs, action, reward), ...]

    def push(self, obs, actions, rewards, next_obs, terminated, done) -> Optional[tuple]:
        """Add one vector step; returns the finished n-step transitions as arrays
        (obs, actions, rewards, next_obs, terminated, discounts), or None."""
        out = []
        for i, queue in enumerate(self.pending):
            queue.append((obs[i], actions[i], float(rewards[i])))
            starts = range(len(queue)) if done[i] else ([0] if len(queue) == self.n else [])
            for start in starts:
                steps = queue[start:]
                reward = sum(self.gamma ** k * r for k, (_, _, r) in enumerate(steps))
                out.append((steps[0][0], steps[0][1], reward, next_obs[i], bool(terminated[i]),
                            self.gamma ** len(steps)))
            if done[i]:
                queue.clear()
            elif len(queue) == self.n:
                queue.pop(0)
        if not out:
            return None
        o, a, r, n_obs, term, disc = zip(*out)
        return np.stack(o), np.array(a), np.array(r, np.float32), np.stack(n_obs), np.array(term), np.array(disc)

    def state(self) -> list:
        return [[list(item) for item in queue] for queue in self.pending]

    def load_state(self, state: list) -> None:
        self.pending = [[(np.asarray(o), int(a), float(r)) for o, a, r in queue] for queue in state]


class NStepReplay:
    """Stores n-step transitions in `replay` (uniform or prioritized): `add` takes one-step
    transitions like every replay's, the rest is the wrapped replay's."""

    def __init__(self, replay: ReplayBuffer, n: int, gamma: float, num_envs: int):
        self.replay = replay
        self.accumulator = NStepAccumulator(n, gamma, num_envs)

    def add(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        ready = self.accumulator.push(obs, actions, rewards, next_obs, terminated, terminated | truncated)
        if ready is not None:
            self.replay.store(*ready)

    def sample(self, batch_size: int) -> Batch:
        return self.replay.sample(batch_size)

    def anneal(self, progress: float) -> None:
        self.replay.anneal(progress)

    def update_priorities(self, batch: Batch, result: HasTDErrors) -> None:
        self.replay.update_priorities(batch, result)

    @property
    def rng(self) -> np.random.Generator:
        return self.replay.rng

    @property
    def nbytes(self) -> int:
        return self.replay.nbytes

    @property
    def bytes_per_transition(self) -> float:
        return self.replay.bytes_per_transition

    def __len__(self) -> int:
        return len(self.replay)

    def state(self) -> dict:
        return self.replay.state()

    def load_state(self, state: dict) -> None:
        self.replay.load_state(state)

    def pending_state(self) -> list:
        """The starts of n-step transitions still being summed (checkpointed for exact resume)."""
        return self.accumulator.state()

    def load_pending_state(self, state: list) -> None:
        self.accumulator.load_state(state)
