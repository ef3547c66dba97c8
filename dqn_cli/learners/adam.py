"""Adam, RAdam and RMSprop over the one flat tensor that holds all of a network's weights
(FlatParameters.param), each step bit-identical to torch.optim's."""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

import torch

# torch.optim.Adam's hyperparameters, in the order its state_dict lists them.
_GROUP_FLAGS = {"maximize": False, "foreach": None, "capturable": False, "differentiable": False, "fused": True}


class FlatOptimizer:
    """One optimizer over one flat tensor, its state_dict in torch.optim's layout (one group, one
    parameter) so that checkpoints load into either. Subclasses set param, group and state."""

    param: torch.Tensor
    group: dict
    state: Dict[str, torch.Tensor]

    @property
    def param_groups(self) -> list:
        return [{**self.group, "params": [self.param]}]

    def state_dict(self) -> dict:
        started = bool(self.state["step"].item())  # torch.optim has no per-parameter state before a step
        return {"state": {0: {k: v.clone() for k, v in self.state.items()}} if started else {},
                "param_groups": [{**self.group, "params": [0]}]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Loads this class's or torch.optim's moments, keeping this optimizer's own lr, betas,
        eps and weight decay (the config's: a resume may change them); ValueError if it is not one
        optimizer over one tensor of this size (checkpoints of older versions had one per parameter)."""
        groups, states = state_dict["param_groups"], state_dict["state"]
        if len(groups) != 1 or len(groups[0]["params"]) != 1 or len(states) > 1:
            raise ValueError("the state is not that of one optimizer over one tensor")
        saved = next(iter(states.values()), {})
        moments = [tensor for name, tensor in saved.items() if name != "step"]
        if moments and moments[0].shape != self.param.shape:
            raise ValueError(f"the state is for {moments[0].numel()} weights, not {self.param.numel()}")
        for name, tensor in self.state.items():  # a statistic the saved run did not keep starts at zero
            tensor.copy_(saved[name] if name in saved else torch.zeros_like(tensor))

    def compile(self) -> None:
        """torch.compile the step (a learner's compile=true). A step that reads its count back into
        Python (RAdam) or calls one fused kernel already (Adam) stays as it is."""


class FlatAdam(FlatOptimizer):
    """Adam or AdamW over one tensor: the fused kernel torch.optim.Adam(fused=True) calls, called
    directly, so each step is bit-identical to torch's. Its state_dict has torch.optim.Adam's
    layout, so checkpoints load into either. torch.optim imports torch._dynamo when an optimizer
    is built and on its first step, which would be half of a CartPole run's start-up."""

    def __init__(self, param: torch.Tensor, *, lr: float, betas: Tuple[float, float], eps: float,
                 weight_decay: float, amsgrad: bool, decoupled_weight_decay: bool):
        self.param = param
        self.group = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                      "amsgrad": amsgrad, **_GROUP_FLAGS, "decoupled_weight_decay": decoupled_weight_decay}
        self.kernel = getattr(torch, "_fused_adamw_" if decoupled_weight_decay else "_fused_adam_", None)
        self.torch_optimizer: Optional[torch.optim.Optimizer] = None  # where the kernel is missing or differs
        # Created zero, as torch.optim does on its first step (the step count is a float32 tensor).
        self.state: Dict[str, torch.Tensor] = {"step": torch.zeros((), dtype=torch.float32, device=param.device),
                                               "exp_avg": torch.zeros_like(param), "exp_avg_sq": torch.zeros_like(param)}
        if amsgrad:
            self.state["max_exp_avg_sq"] = torch.zeros_like(param)

    @torch.no_grad()
    def step(self) -> None:
        if self.kernel is None:
            self._torch_step()
            return
        group, state = self.group, self.state
        state["step"].add_(1)
        try:
            self.kernel([self.param], [self.param.grad], [state["exp_avg"]], [state["exp_avg_sq"]],
                        [state["max_exp_avg_sq"]] if group["amsgrad"] else [], [state["step"]],
                        amsgrad=group["amsgrad"], lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1],
                        weight_decay=group["weight_decay"], eps=group["eps"], maximize=False)
        except (TypeError, RuntimeError):  # a torch whose private kernel differs: its public step from now on
            state["step"].sub_(1)
            self.kernel = None
            self._torch_step()

    def _torch_step(self) -> None:
        """torch.optim's own Adam, stepping this object's state tensors in place."""
        if self.torch_optimizer is None:
            adam = torch.optim.AdamW if self.group["decoupled_weight_decay"] else torch.optim.Adam
            fused = True if hasattr(torch, "_fused_adam_") else None
            group = self.group
            self.torch_optimizer = adam([self.param], lr=group["lr"], betas=group["betas"], eps=group["eps"],
                                        weight_decay=group["weight_decay"], amsgrad=group["amsgrad"], fused=fused)
            self.torch_optimizer.state[self.param] = self.state
        self.torch_optimizer.step()


class FlatRAdam(FlatOptimizer):
    """torch.optim.RAdam's single-tensor step (its CPU path), op for op, so each step is bit-identical
    to torch's; its temporaries live in two buffers made once instead of six tensors made per step,
    and the step skips torch.optim's per-call bookkeeping (together, about half of a step's time)."""

    def __init__(self, param: torch.Tensor, *, lr: float, betas: Tuple[float, float], eps: float,
                 weight_decay: float):
        self.param = param
        self.group = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "maximize": False,
                      "foreach": None, "capturable": False, "decoupled_weight_decay": False, "differentiable": False}
        self.state = {"step": torch.zeros((), dtype=torch.float32), "exp_avg": torch.zeros_like(param),
                      "exp_avg_sq": torch.zeros_like(param)}
        self.update, self.scale = torch.empty_like(param), torch.empty_like(param)

    @torch.no_grad()
    def step(self) -> None:
        group, state = self.group, self.state
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        state["step"] += 1
        step = state["step"].item()
        grad = self.param.grad if weight_decay == 0 else self.param.grad.add(self.param, alpha=weight_decay)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1, bias_correction2 = 1 - beta1**step, 1 - beta2**step
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        update = torch.div(exp_avg, bias_correction1, out=self.update).mul_(lr)
        if rho_t > 5.0:  # torch: m_hat * lr * (sqrt(bc2) / (sqrt(v) + eps)) * rect, a number over a tensor
            # being the tensor's reciprocal times the number
            scale = torch.sqrt(exp_avg_sq, out=self.scale).add_(eps).reciprocal_().mul_(bias_correction2**0.5)
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            update.mul_(scale).mul_(rect)
        self.param.add_(update, alpha=-1.0)


def sqrt_(tensor: torch.Tensor, zeros: torch.Tensor) -> torch.Tensor:
    """torch.sqrt in place, the same numbers, in a third of its time on a tensor with many zeros: torch's
    vectorized square root on the CPU takes a slow path for every block of floats that holds a zero, and
    a network fed MinAtar's sparse grids keeps a quarter to a third of its RMSprop statistics exactly zero.
    Each zero is taken to 1 and its root, 1, back to 0 (-0.0 to 0.0); `zeros` is a scratch tensor of the
    same shape."""
    if tensor.device.type != "cpu":
        return tensor.sqrt_()
    torch.eq(tensor, 0, out=zeros)  # 1.0 where zero
    return tensor.add_(zeros).sqrt_().sub_(zeros)


class FlatRMSprop(FlatOptimizer):
    """torch.optim.RMSprop's single-tensor step (its CPU path), op for op, so each step is bit-identical to
    torch's; its temporary lives in a buffer made once, its square root skips torch's slow path for
    zeros (`sqrt_`) while there are many, and the step skips torch.optim's per-call bookkeeping."""

    ZERO_CHECK_INTERVAL = 1000  # steps between counts of the zero statistics (their share moves slowly)
    MANY_ZEROS = 0.05  # below this share, sqrt_'s three extra passes cost more than the slow path

    def __init__(self, param: torch.Tensor, *, lr: float, alpha: float, eps: float, weight_decay: float,
                 momentum: float, centered: bool):
        self.param = param
        self.group = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                      "weight_decay": weight_decay, "capturable": False, "foreach": None, "maximize": False,
                      "differentiable": False}
        self.state = {"step": torch.zeros((), dtype=torch.float32, device=param.device),
                      "square_avg": torch.zeros_like(param)}
        if momentum > 0:
            self.state["momentum_buffer"] = torch.zeros_like(param)
        if centered:
            self.state["grad_avg"] = torch.zeros_like(param)
        self.avg, self.zeros = torch.empty_like(param), torch.empty_like(param)
        self.steps_to_zero_check, self.many_zeros = 0, True

    def step(self) -> None:
        self._step(self.group["lr"])

    def compile(self) -> None:
        """Its ten passes over the weights as one fused loop. The learning rate enters as a tensor, so
        that each new rate of a decay schedule is an input rather than a new compilation."""
        compiled = torch.compile(self._step, fullgraph=True, dynamic=False)
        self.step = lambda: compiled(torch.tensor(self.group["lr"]))

    @torch.no_grad()
    def _step(self, lr: Union[float, torch.Tensor]) -> None:
        group, state = self.group, self.state
        alpha, momentum, weight_decay = group["alpha"], group["momentum"], group["weight_decay"]
        state["step"] += 1
        grad = self.param.grad if weight_decay == 0 else self.param.grad.add(self.param, alpha=weight_decay)
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg.lerp_(grad, 1 - alpha)
            avg = torch.addcmul(square_avg, grad_avg, grad_avg, value=-1, out=self.avg)
        else:
            avg = self.avg.copy_(square_avg)
        compiled = torch.compiler.is_compiling()  # then the lr is a tensor
        if compiled:  # a compiled square root has no slow path for zeros
            avg.sqrt_().add_(group["eps"])
        else:
            if self.steps_to_zero_check == 0:
                self.steps_to_zero_check = self.ZERO_CHECK_INTERVAL
                self.many_zeros = bool(torch.count_nonzero(avg == 0) > self.MANY_ZEROS * avg.numel())
            self.steps_to_zero_check -= 1
            (sqrt_(avg, self.zeros) if self.many_zeros else avg.sqrt_()).add_(group["eps"])
        if momentum > 0:
            buffer = state["momentum_buffer"]
            buffer.mul_(momentum).addcdiv_(grad, avg)
            if compiled:
                self.param.sub_(buffer * lr)
            else:
                self.param.add_(buffer, alpha=-lr)
        elif compiled:
            self.param.sub_(grad / avg * lr)
        else:
            self.param.addcdiv_(grad, avg, value=-lr)


Optimizer = Union[FlatOptimizer, torch.optim.Optimizer]  # what a learner steps
