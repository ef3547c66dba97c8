"""A learner's update recorded once as a CUDA graph and replayed for every batch after."""

from __future__ import annotations

from typing import List, Optional

import torch

from dqn_cli.learners.adam import FlatAdam
from dqn_cli.learners.base import Learner
from dqn_cli.learners.update import LearnResult
from dqn_cli.replay import Batch

_WARMUP_UPDATES = 3  # eager updates on a side stream before recording, as torch's CUDA-graph guide asks


class CUDAGraphLearner:
    """Runs `inner.learn` through a CUDA graph (`cuda_graph=true`, on a GPU).

    A small network's update is a hundred or so tiny kernels, and the GPU spends most of it
    waiting for Python to launch them one by one. The first update records every kernel of
    `inner.learn` into a graph; each later update copies its batch into the graph's input
    tensors and launches the whole graph at once. The kernels are the eager update's: an MLP's
    numbers come out bit for bit, a CNN's within rounding (docs/atari.md). Recording needs a few
    eager updates first: they run on a copy of the first batch and are undone (weights and
    optimizer state are put back) before the first real update. The optimizer must keep its
    whole state on the GPU: FlatAdam's fused step does, torch.optim's RMSprop and SGD (a step
    count on the CPU) do not."""

    def __init__(self, inner: Learner):
        if not isinstance(inner.optimizer, FlatAdam):
            raise TypeError(f"a CUDA graph needs optimizer=adam or adamw, not {type(inner.optimizer).__name__}")
        self.inner = inner
        self.online_q, self.target_q, self.act_q = inner.online_q, inner.target_q, inner.act_q  # acting and evaluating stay eager
        self.graph: Optional[torch.cuda.CUDAGraph] = None
        self.inputs: Optional[Batch] = None  # the tensors the graph reads its batch from
        self.outputs: Optional[LearnResult] = None  # the tensors the graph writes its results to

    @property
    def backprop(self):
        return getattr(self.inner, "backprop", None)

    def learn(self, batch: Batch) -> LearnResult:
        if self.graph is None:
            self._record(batch)
        for graph_input, tensor in zip(self.inputs, batch):
            if isinstance(graph_input, torch.Tensor):
                graph_input.copy_(tensor)
        self.graph.replay()
        # The next replay overwrites the outputs; the loop keeps results until it logs them.
        return self.outputs._replace(q_taken=self.outputs.q_taken.clone(), targets=self.outputs.targets.clone(),
                                     weights=batch.weights)

    def _learning_state(self) -> List[torch.Tensor]:
        """Every tensor an update changes besides the gradients (which each update overwrites)."""
        return [self.inner.weights.data, *self.inner.optimizer.state.values()]

    def _record(self, batch: Batch) -> None:
        before = [tensor.clone() for tensor in self._learning_state()]
        self.inputs = Batch(*(field.clone() if isinstance(field, torch.Tensor) else None for field in batch))
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(_WARMUP_UPDATES):
                self.inner.learn(self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        if self.inner.optimizer.kernel is None:  # the warm-up fell back to torch.optim's Adam
            raise TypeError("a CUDA graph needs torch's fused Adam kernel, which this torch build lacks")
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = self.inner.learn(self.inputs)
        for tensor, saved in zip(self._learning_state(), before):
            tensor.copy_(saved)
