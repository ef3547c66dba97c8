"""The top-level schemas: TrainConfig (dqn-train) and EvalArgs (dqn-eval)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from dqn_cli.config.choices import (DEVICES, Loss, ProgressMode, Unit, require, require_finite_floats,
                                    require_no_blank_strings, require_null_or_positive, require_positive)
from dqn_cli.config.groups import (BufferConfig, EnvConfig, ExplorationConfig, LinearExplorationConfig, NetworkConfig,
                                   TargetConfig, TrackerConfig)
from dqn_cli.config.learning import AlgorithmConfig, OptimizerConfig, PQNConfig
from dqn_cli.errors import ConfigError


# numpy and gymnasium take seeds of any size, torch up to 2**64 - 1; the derived seeds (run seed plus
# offsets for eval envs and episodes) must stay inside that, so run seeds stop at 2**32 - 1.
MAX_SEED = 2**32 - 1


@dataclass
class EvalConfig:
    interval: Optional[int] = None
    """Greedy evaluation every this many env steps (0: only at the end); null: 1,000, or for Atari
    total_steps / 20 from 200k steps on (shorter Atari runs evaluate only at the end)."""
    episodes: Optional[int] = None
    """Episodes per periodic evaluation, whose best mean picks checkpoints/best.pt; null: 10 (Atari: 3)."""
    final_episodes: Optional[int] = None
    """Episodes of the final evaluation of best.pt and last.pt; null: 100 (Atari: 10 whole games)."""
    stop_when_solved: bool = True
    """Stop training once a periodic evaluation reaches env.solve_threshold and a second one over
    eval.final_episodes episodes confirms it (SB3's StopTrainingOnRewardThreshold, confirmed):
    last.pt is then the weights that solved it. No effect for envs without a threshold or with
    eval.interval=0."""

    def __post_init__(self):
        require(self.interval is None or self.interval >= 0, "eval.interval", self.interval, "an integer >= 0")
        require_null_or_positive(self, "eval.", "episodes", "final_episodes")

    def resolved(self, atari: bool, total_steps: int) -> "EvalConfig":
        """Nulls replaced by defaults that keep evaluation a small share of a run: an Atari game
        takes thousands of steps to play, a CartPole episode at most 500."""
        if atari:
            defaults = (total_steps // 20 if total_steps >= 200_000 else 0, 3, 10)
        else:
            defaults = (1_000, 10, 100)
        given = (self.interval, self.episodes, self.final_episodes)
        return EvalConfig(*(default if value is None else value for value, default in zip(given, defaults)),
                          stop_when_solved=self.stop_when_solved)


@dataclass
class CheckpointConfig:
    interval: Optional[int] = None
    """Write a resumable checkpoint every this many env steps (None: at each periodic evaluation)."""
    keep: int = 3
    """Periodic checkpoints (checkpoints/step_*.pt) to keep; older ones are deleted."""
    save_replay: bool = True
    """Save the replay buffer beside each periodic checkpoint (off: resume starts with an empty buffer)."""

    def __post_init__(self):
        require_positive(self, "checkpoint.", "keep")
        require(self.interval is None or self.interval > 0, "checkpoint.interval", self.interval,
                "null or an integer > 0")


@dataclass
class LogConfig:
    train_interval: int = 1_000
    """Write TD loss, mean Q, epsilon and steps/s to TensorBoard every this many env steps."""
    console_interval_s: float = 10.0
    """Seconds between plain log lines when stderr is not a terminal."""
    progress: ProgressMode = ProgressMode.auto
    """auto (a bar on a terminal, log lines otherwise) | bar | lines | off."""

    def __post_init__(self):
        require_positive(self, "log.", "train_interval", "console_interval_s")


@dataclass
class TrainConfig:
    env: EnvConfig = MISSING
    """The environment (config group env)."""
    network: NetworkConfig = MISSING
    """The Q-network (config group network)."""
    buffer: BufferConfig = MISSING
    """The replay buffer (config group buffer)."""
    target: TargetConfig = MISSING
    """The target-network update (config group target)."""
    optimizer: OptimizerConfig = MISSING
    """The optimizer and gradient clipping (config group optimizer)."""
    exploration: ExplorationConfig = MISSING
    """The epsilon schedule (config group exploration)."""
    algorithm: AlgorithmConfig = field(default_factory=lambda: AlgorithmConfig(name="dqn"))
    """dqn (replay and a target network) or pqn (rollouts of many envs and lambda-returns) (config group algorithm)."""
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    """An experiment tracker beside TensorBoard (config group tracker): none, mlflow or wandb."""
    seed: int = 0
    """Drives every random number generator; train and eval envs get derived seeds (0 to 2**32 - 1)."""
    total_steps: int = 50_000
    """Environment steps to train for, at most (eval.stop_when_solved may stop sooner), summed over
    parallel envs; unused when total_episodes is set."""
    total_episodes: Optional[int] = None
    """Train until this many episodes have ended (counted over all envs) instead of for total_steps."""
    gamma: float = 0.99
    """Discount factor, 0 <= gamma <= 1."""
    loss: Loss = Loss.huber
    """huber | mse."""
    double_q: bool = False
    """Double DQN: the online net picks the next action, the target net values it."""
    batch_size: int = 64
    """Transitions per gradient step."""
    learning_starts: int = 1_000
    """Env steps of uniformly random actions before learning begins."""
    train_freq: int = 4
    """Run an update every this many env steps (or episodes, see train_freq_unit) ..."""
    gradient_steps: int = 1
    """... of this many gradient steps."""
    train_freq_unit: Unit = Unit.step
    """step | episode: what train_freq counts (episode: finished episodes, over all envs)."""
    device: str = "auto"
    """auto (a GPU if available and the network is convolutional; MLPs run faster on the CPU) | cpu |
    cuda | cuda:N | auto:N (GPU N, for a convolutional network)."""
    torch_threads: int = 0
    """Intra-op threads for torch; 0 picks 1 for MLPs and for small CNNs on small batches, the cores this
    process may use (a SLURM allocation's, a taskset's) for larger CNNs and for PQN's minibatches of 128
    and more, divided by n_jobs in a joblib sweep."""
    resume: Optional[str] = None
    """A run directory to continue (dqn-train resume=outputs/runs/<run>)."""
    reproduce: Optional[str] = None
    """A run directory whose config a new run trains again, exactly (dqn-train reproduce=outputs/runs/<run>)."""
    compile: bool = False
    """torch.compile the update: where a fast learner covers the network (MLPs, MinAtar's CNNs), its target,
    forward and backward passes as one graph and RMSProp's step as another; else autograd's forward passes.
    About 10 s of compiling up front, numbers that round differently, and on the CPU a C++ compiler
    (docs: benchmarks)."""
    prefetch: bool = False
    """DQN on the CPU: a second process samples the next batch and computes its TD targets while this one
    updates, acts and steps the env; the same numbers, sooner. Needs 2 cores, one torch thread, uniform
    one-step replay, one env, an update every step, target=hard and no double_q; where it cannot work the
    run says why and samples as usual."""
    cuda_graph: bool = False
    """On a GPU, record the update once as a CUDA graph and replay it for every batch: one launch instead
    of a hundred small kernels, the same kernels (docs/atari.md). Needs optimizer=adam or adamw; no effect
    on the CPU."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Periodic and final greedy evaluation."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Resumable checkpoints."""
    log: LogConfig = field(default_factory=LogConfig)
    """TensorBoard and console output."""

    def __post_init__(self):
        require_finite_floats(self)
        require_no_blank_strings(self)
        require_positive(self, "", "total_steps", "batch_size", "train_freq", "gradient_steps")
        require(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"an integer from 0 to {MAX_SEED}")
        require(0.0 <= self.gamma <= 1.0, "gamma", self.gamma, "0 <= gamma <= 1")
        require(self.device in DEVICES or re.fullmatch(r"(cuda|auto):\d+", self.device) is not None, "device",
                self.device, " | ".join(DEVICES) + " | cuda:N | auto:N")
        require(self.learning_starts >= 0, "learning_starts", self.learning_starts, "an integer >= 0")
        require(self.torch_threads >= 0, "torch_threads", self.torch_threads, "0 (auto) or more")
        if self.env is not MISSING:
            self.eval = self.eval.resolved(self.env.atari is not None, self.total_steps)
        require_null_or_positive(self, "", "total_episodes")
        if isinstance(self.algorithm, PQNConfig):  # before the exploration check, which total_episodes also fails
            self._check_pqn()
        exploration = self.exploration
        if isinstance(exploration, LinearExplorationConfig) and exploration.steps is None:
            require(exploration.unit == self.budget_unit, "exploration.unit", str(exploration.unit),
                    f"{self.budget_unit} (exploration.fraction is a share of the budget, total_{self.budget_unit}s), "
                    "or set exploration.steps")
        if self.cuda_graph:
            require(not self.compile, "compile", self.compile, "false with cuda_graph=true (choose one)")
            if self.optimizer is not MISSING:
                require(self.optimizer.name in ("adam", "adamw"), "optimizer", self.optimizer.name,
                        "adam or adamw with cuda_graph=true (their whole state lives on the GPU)")
        if self.buffer is not MISSING:
            require(self.buffer.capacity >= self.batch_size, "buffer.capacity", self.buffer.capacity,
                    f">= batch_size ({self.batch_size})")

    def _check_pqn(self) -> None:
        require(self.total_episodes is None, "total_episodes", self.total_episodes,
                "null with algorithm=pqn (it counts its budget and learning-rate decay in env steps: set total_steps)")
        require(not self.cuda_graph, "cuda_graph", self.cuda_graph, "false with algorithm=pqn")
        if self.env is not MISSING:
            self.algorithm.check_fits(self.env)

    @property
    def budget_unit(self) -> Unit:
        """What the budget counts: episodes when total_episodes is set, env steps otherwise."""
        return Unit.step if self.total_episodes is None else Unit.episode

    @property
    def budget(self) -> int:
        return self.total_steps if self.total_episodes is None else self.total_episodes

    @property
    def update_rows(self) -> int:
        """Transitions in one gradient step: batch_size for DQN, a rollout's minibatch for PQN."""
        if isinstance(self.algorithm, PQNConfig):
            return self.env.num_envs * self.algorithm.rollout_steps // self.algorithm.minibatches
        return self.batch_size


@dataclass
class EvalArgs:
    """dqn-eval's arguments."""
    run: str = ""
    """The run directory to evaluate (required)."""
    checkpoint: str = "best"
    """best | last | a checkpoint file (a path, or a name under <run>/checkpoints/, e.g. step_000000012000)."""
    episodes: Optional[int] = None
    """Greedy episodes to play; null: as many as the run's final evaluation (reproduces summary.json)."""
    video: bool = False
    """Also write an mp4 of one episode under <run>/videos/."""
    seed: int = -1
    """Seed of the first episode; -1 uses the run's final-evaluation seeds (reproduces summary.json)."""
    device: str = "cpu"
    """cpu | cuda | auto."""

    def __post_init__(self):
        if not self.run:
            raise ConfigError("missing run=<run dir>, e.g. dqn-eval run=outputs/runs/<run-dir>")
        require_null_or_positive(self, "", "episodes")
        require(-1 <= self.seed <= MAX_SEED, "seed", self.seed, f"-1 (the run's own) or an integer from 0 to {MAX_SEED}")
        require(self.device in DEVICES, "device", self.device, " | ".join(DEVICES))
