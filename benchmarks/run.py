"""Side-by-side speed benchmark, run by hand (never by the tests). One command:

    python benchmarks/run.py                  # sections 1-4 and 6-8 (~19 minutes on 2 cores); 5 and 9 need flags
    python benchmarks/run.py --sb3            # also SB3 + RL Zoo's tuned CartPole (pip install -e ".[bench]")
    python benchmarks/run.py --quick          # smaller budgets, to check that it runs

It prints markdown tables and writes benchmarks/results.json:

1. update time: a bare-torch DQN update (same network, batch and optimizer, fixed tensors, the
   way one would write it by hand) against dqn-cli's update (replay sampling + agent.learn);
2. the PyTorch tutorial's loop (benchmarks/tutorial_loop.py, after the PyTorch DQN tutorial) against
   `dqn-train experiment=pytorch_tutorial` for the same number of env steps;
3. `dqn-train` defaults on seeds 0-9, each a separate process: wall time, start-up (launch to
   first env step), share of time in periodic evaluation, steps/s, best/last 100-episode means;
4. throughput features, seed 0 for a fixed budget: vector envs (`env.num_envs=4` as Python envs, 8 and
   16 as one numpy batch) and `compile=true`;
5. optionally SB3 DQN with RL Zoo's tuned CartPole-v1 hyperparameters, seeds 0-2;
6. a five-seed sweep run in parallel with joblib against the same jobs one after another;
7. the JAX anchor (benchmarks/jax_anchor.py, the `bench-jax` extra in a venv of its own, since gymnax
   needs gymnasium < 1.4; --jax-python names that venv's Python) against `dqn-train` defaults: seeds 0-2 one process each, whole-process time to the final
   policy and its 100-episode score; then five seeds vmapped in one JAX process against a five-seed
   joblib sweep of dqn-train, per seed;
8. `dqn-train --help`, `dqn-eval --help` and `dqn-report --help` against a bare `import torch`, whole
   processes, interleaved;
9. PQN on MinAtar Breakout: purejaxql's own `pqn_minatar.py` (benchmarks/purejaxql_pqn.py: a checkout
   named by --purejaxql, two adaptations to gymnax 1.0, run by --jax-python) against
   `dqn-train experiment=pqn_minatar`, the same budget, one whole process each, one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import seeds as seed_runs  # noqa: E402


BIN = Path(sys.executable).parent
EXTRA_OVERRIDES: list = []  # --overrides: appended to every dqn-train run (e.g. device=cuda on a GPU machine)


def run_seed(seed: int, overrides: list, workdir: Path) -> dict:
    return seed_runs.run_seed(seed, [*overrides, *EXTRA_OVERRIDES], workdir)


# 1. update time ------------------------------------------------------------------------------

def bare_torch_update_us(hidden: int, batch: int, optimizer: str, repeats: int, device: str = "cpu") -> float:
    """The floor: one DQN update written plainly on preallocated tensors (no replay, no loop)."""
    torch.manual_seed(0)

    def net():
        return torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                                   torch.nn.ReLU(), torch.nn.Linear(hidden, 2)).to(device)

    online, target = net(), net()
    if optimizer == "adamw_amsgrad":
        opt = torch.optim.AdamW(online.parameters(), lr=1e-4, amsgrad=True)
    else:
        opt = torch.optim.Adam(online.parameters(), lr=1e-3)
    obs, next_obs = torch.randn(batch, 4, device=device), torch.randn(batch, 4, device=device)
    actions = torch.randint(0, 2, (batch, 1), device=device)
    rewards, terminated = torch.randn(batch, device=device), torch.zeros(batch, device=device)

    def update():
        q = online(obs).gather(1, actions).squeeze(1)
        with torch.no_grad():
            y = rewards + 0.99 * (1 - terminated) * target(next_obs).max(1).values
        loss = torch.nn.functional.smooth_l1_loss(q, y)
        opt.zero_grad()
        loss.backward()
        if optimizer == "adamw_amsgrad":
            torch.nn.utils.clip_grad_value_(online.parameters(), 100)
        opt.step()

    return _time_us(update, repeats, device)


def dqn_cli_update_us(hidden: int, batch: int, optimizer: str, repeats: int, device: str = "cpu",
                      fast_learner: bool = True) -> float:
    """dqn-cli's update as the loop runs it: sample a batch from a filled replay buffer, learn
    (by default through the fast MLP learner; fast_learner=False: through the autograd learner)."""
    from dqn_cli.agent import DQNAgent
    from dqn_cli.replay import ReplayBuffer
    from dqn_cli.config import AdamConfig, AdamWConfig, HardTargetConfig, TrainConfig
    from dqn_cli.networks import MLPQNetwork

    torch.manual_seed(0)
    tutorial = optimizer == "adamw_amsgrad"
    optimizer = AdamWConfig(lr=1e-4, amsgrad=True, max_grad_value=100) if tutorial else AdamConfig(lr=1e-3)
    cfg = TrainConfig(optimizer=optimizer, target=HardTargetConfig(), gamma=0.99)
    agent = DQNAgent(MLPQNetwork(4, 2, [hidden, hidden], "relu"), cfg, torch.device(device), fast_learner=fast_learner)
    buffer = ReplayBuffer(10_000, (4,), np.float32, seed=0, device=torch.device(device))
    n = 10_000
    rng = np.random.default_rng(0)
    buffer.store(rng.normal(size=(n, 4)), rng.integers(0, 2, n), rng.normal(size=n), rng.normal(size=(n, 4)),
               np.zeros(n))
    return _time_us(lambda: agent.learn(buffer.sample(batch)), repeats, device)


def _time_us(fn, repeats: int, device: str = "cpu") -> float:
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(max(repeats // 10, 20)):
        fn()
    best = float("inf")
    for _ in range(3):  # best of three blocks: the least disturbed estimate of the floor
        sync()
        started = time.perf_counter()
        for _ in range(repeats):
            fn()
        sync()
        best = min(best, (time.perf_counter() - started) / repeats * 1e6)
    return best


def update_table(repeats: int, device: str = "cpu") -> tuple[str, list]:
    rows = []
    for label, hidden, batch, optimizer in (("128-128 MLP, batch 128, Adam", 128, 128, "adam"),
                                            ("128-128 MLP, batch 128, AdamW amsgrad + clip (tutorial)", 128, 128,
                                             "adamw_amsgrad"),
                                            ("128-128 MLP, batch 64, Adam (dqn-train default)", 128, 64, "adam")):
        floor = bare_torch_update_us(hidden, batch, optimizer, repeats, device)
        autograd = dqn_cli_update_us(hidden, batch, optimizer, repeats, device, fast_learner=False)
        ours = dqn_cli_update_us(hidden, batch, optimizer, repeats, device)
        rows.append({"setting": label, "bare_torch_us": round(floor), "dqn_cli_autograd_us": round(autograd),
                     "dqn_cli_us": round(ours), "ratio": round(ours / floor, 2)})
    lines = ["| setting | bare torch update | dqn-cli through autograd | dqn-cli (sample + learn) | ratio to bare |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['setting']} | {r['bare_torch_us']} us | {r['dqn_cli_autograd_us']} us | {r['dqn_cli_us']} us | "
              f"{r['ratio']:.2f}x |" for r in rows]
    return "\n".join(lines), rows


# 2. tutorial loop ----------------------------------------------------------------------------

def tutorial_table(steps: int, workdir: Path, repeats: int = 3) -> tuple[str, dict]:
    """Each loop `repeats` times, interleaved, so a slow spell of the machine hits all of them;
    the median steps/s of each goes into the table."""
    def tutorial(*flags):
        out = subprocess.run([sys.executable, str(HERE / "tutorial_loop.py"), "--steps", str(steps), *flags],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    def ours():
        # the preset's budget is 600 episodes: the same env steps as the tutorial's loop instead
        return run_seed(0, ["experiment=pytorch_tutorial", "total_episodes=null", f"total_steps={steps}",
                            "eval.interval=0",
                            "eval.final_episodes=10"], workdir)

    runs = {"tutorial": [], "tutorial_live_plot": [], "dqn_cli": []}
    for _ in range(repeats):
        runs["tutorial"].append(tutorial())
        runs["tutorial_live_plot"].append(tutorial("--live-plot"))
        runs["dqn_cli"].append(ours())
    rate = {name: statistics.median(r["steps_per_second"] for r in results) for name, results in runs.items()}
    spread = {name: f"{min(r['steps_per_second'] for r in results):,.0f}-{max(r['steps_per_second'] for r in results):,.0f}"
              for name, results in runs.items()}
    lines = [f"| loop | env steps | steps/s (median of {repeats}) | range | dqn-cli's ratio to it |",
             "|---|---|---|---|---|"]
    for label, name in (("PyTorch tutorial loop (benchmarks/tutorial_loop.py)", "tutorial"),
                        ("the same with the tutorial's per-episode duration chart", "tutorial_live_plot")):
        lines.append(f"| {label} | {steps:,} | {rate[name]:,.0f} | {spread[name]} | "
                     f"{rate['dqn_cli'] / rate[name]:.2f}x |")
    lines.append(f"| `dqn-train experiment=pytorch_tutorial` | {steps:,} | {rate['dqn_cli']:,.0f} | "
                 f"{spread['dqn_cli']} | |")
    return "\n".join(lines), {**runs, "steps_per_second": rate,
                              "ratio": round(rate["dqn_cli"] / rate["tutorial"], 2),
                              "ratio_live_plot": round(rate["dqn_cli"] / rate["tutorial_live_plot"], 2)}


# 3. default preset ---------------------------------------------------------------------------

def defaults_tables(seeds: list, overrides: list, workdir: Path) -> tuple[str, list]:
    rows = [run_seed(seed, overrides, workdir) for seed in seeds]
    ok = [r for r in rows if "error" not in r]
    timing = ["| seed | process wall | start-up (launch -> first env step) | periodic eval share of wall |",
              "|---|---|---|---|"]
    for r in ok:
        timing.append(f"| {r['seed']} | {r['process_wall_s']:.1f} s | {r['startup_s']:.2f} s | "
                      f"{100 * r['periodic_eval_time_s'] / r['process_wall_s']:.1f}% |")
    if ok:
        timing.append(f"| **median** | {statistics.median(r['process_wall_s'] for r in ok):.1f} s | "
                      f"{statistics.median(r['startup_s'] for r in ok):.2f} s | "
                      f"{statistics.median(100 * r['periodic_eval_time_s'] / r['process_wall_s'] for r in ok):.1f}% |")
    threshold = ok[0]["solve_threshold"] if ok else None
    return seed_runs.table(rows, threshold) + "\n\n" + "\n".join(timing), rows


def markdown_rows(header: list, rows: list, label_key: str, cells) -> str:
    """A markdown table: one line per row, its label first; a failed row says why."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        body = [f"failed: {r['error']}"] + [""] * (len(header) - 2) if "error" in r else cells(r)
        lines.append(f"| {r[label_key]} | " + " | ".join(body) + " |")
    return "\n".join(lines)


# 4. throughput features ----------------------------------------------------------------------

def features_table(steps: int, workdir: Path) -> tuple[str, list]:
    """Seed 0 for a fixed budget (stop_when_solved off), so every row does the same work."""
    variants = [("env.num_envs=1", ["env.num_envs=1"]), ("env.num_envs=4 (Python envs)", ["env.num_envs=4"]),
                ("env.num_envs=8 (numpy batch)", ["env.num_envs=8"]),
                ("env.num_envs=16 (numpy batch; the default)", []), ("compile=true", ["compile=true"])]
    rows = []
    for label, extra in variants:
        r = run_seed(0, [f"total_steps={steps}", "eval.stop_when_solved=false", *extra], workdir)
        rows.append({"variant": label, **r})
    return markdown_rows(["variant (seed 0)", "train steps/s", "process wall", "best.pt (100 ep)", "last.pt (100 ep)"],
                         rows, "variant",
                         lambda r: [f"{r['steps_per_second']:,.0f}", f"{r['process_wall_s']:.1f} s",
                                    f"{r['final_eval']['best']['mean']:.1f}",
                                    f"{r['final_eval']['last']['mean']:.1f}"]), rows


# 5. SB3 + RL Zoo (optional) ------------------------------------------------------------------

def sb3_table(seeds: list, steps: int) -> tuple[str, list]:
    rows = []
    for seed in seeds:
        out = subprocess.run([sys.executable, str(HERE / "sb3_zoo.py"), "--seed", str(seed), "--steps", str(steps)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            rows.append({"seed": seed, "error": out.stderr.strip().splitlines()[-1:]})
        else:
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return markdown_rows(["seed", "training wall", "steps/s", "best model (100 ep)", "last model (100 ep)"], rows,
                         "seed", lambda r: [f"{r['train_seconds']:.1f} s", f"{r['steps_per_second']:,.0f}",
                                            f"{r['best_mean']:.1f} ± {r['best_std']:.1f}",
                                            f"{r['last_mean']:.1f} ± {r['last_std']:.1f}"]), rows


# 6. parallel sweep -----------------------------------------------------------------------------

def parallel_table(seed_list: list, workdir: Path, overrides: list) -> tuple[str, dict]:
    """The same five-seed sweep one job after another (basic launcher) and in parallel (joblib)."""
    timings = {}
    for label, extra in (("one after another (basic launcher)", []), ("parallel (hydra/launcher=joblib)",
                                                                        ["hydra/launcher=joblib"])):
        started = time.perf_counter()
        subprocess.run([str(BIN / "dqn-train"), "-m", "seed=" + ",".join(map(str, seed_list)), "log.progress=off",
                        *overrides, *EXTRA_OVERRIDES, *extra], cwd=workdir, capture_output=True, text=True,
                       check=True)
        timings[label] = round(time.perf_counter() - started, 1)
    sequential, parallel = timings.values()
    lines = ["| sweep of seeds " + ",".join(map(str, seed_list)) + " | wall time |", "|---|---|"]
    lines += [f"| `dqn-train -m ...` {label} | {seconds:.1f} s |" for label, seconds in timings.items()]
    lines.append(f"| **speed-up** | {sequential / parallel:.2f}x on {os.cpu_count()} cores |")
    return "\n".join(lines), {**timings, "speedup": round(sequential / parallel, 2)}


# 7. the JAX anchor ----------------------------------------------------------------------------

def jax_anchor(python: str, arguments: list) -> list:
    out = subprocess.run([python, str(HERE / "jax_anchor.py"), *arguments], capture_output=True, text=True)
    if out.returncode != 0:
        return [{"error": out.stderr.strip().splitlines()[-1:]}]
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def anchor_tables(python: str, seed_list: list, vmapped: int, workdir: Path, overrides: list,
                  jax_arguments: list) -> tuple[str, dict]:
    """Per seed, a JAX anchor process and a dqn-train process, one after the other; then the seeds
    vmapped in one JAX process against a joblib sweep of dqn-train over the same number of seeds."""
    rows = []
    for seed in seed_list:
        anchor = jax_anchor(python, ["--seeds", str(seed), *jax_arguments])[0]
        ours = run_seed(seed, overrides, workdir)
        rows.append({"seed": seed, "jax": anchor, "dqn_cli": ours})
    lines = ["| seed | JAX anchor: whole process (compile, train) | its final policy (100 ep) | dqn-train: whole "
             "process | last.pt (100 ep) | dqn-train faster by |", "|---|---|---|---|---|---|"]
    for r in rows:
        anchor, ours = r["jax"], r["dqn_cli"]
        if "error" in anchor or "error" in ours:
            lines.append(f"| {r['seed']} | failed: {anchor.get('error') or ours.get('error')} | | | | |")
            continue
        lines.append(f"| {r['seed']} | {anchor['measured_wall_s']:.1f} s ({anchor['compile_s']:.1f} s, "
                     f"{anchor['train_s']:.1f} s) | {anchor['final_mean'][0]:.1f} | {ours['process_wall_s']:.1f} s | "
                     f"{ours['final_eval']['last']['mean']:.1f} | "
                     f"{anchor['measured_wall_s'] / ours['process_wall_s']:.1f}x |")
    started = time.perf_counter()
    together = jax_anchor(python, ["--vmap", str(vmapped), *jax_arguments])[0]
    together_wall = time.perf_counter() - started
    sweep_started = time.perf_counter()
    subprocess.run([str(BIN / "dqn-train"), "-m", "seed=" + ",".join(map(str, range(vmapped))), "log.progress=off",
                    "hydra/launcher=joblib", *overrides, *EXTRA_OVERRIDES], cwd=workdir, capture_output=True,
                   text=True, check=True)
    sweep_wall = time.perf_counter() - sweep_started
    sweep_dir = max((workdir / "outputs" / "sweeps").iterdir(), key=lambda d: d.stat().st_mtime)
    sweep_last = [json.loads(p.read_text())["final_eval"]["last"]["mean"]
                  for p in sorted(sweep_dir.glob("*/summary.json"))]
    lines += ["", f"| {vmapped} seeds in one go | whole process | per seed | final policies (100 ep) |", "|---|---|---|---|"]
    if "error" in together:
        lines.append(f"| JAX anchor, seeds vmapped | failed: {together['error']} | | |")
    else:
        lines.append(f"| JAX anchor, seeds vmapped in one process | {together_wall:.1f} s | "
                     f"{together_wall / vmapped:.1f} s | {', '.join(f'{m:.1f}' for m in together['final_mean'])} |")
    lines.append(f"| `dqn-train -m seed=0..{vmapped - 1} hydra/launcher=joblib` | {sweep_wall:.1f} s | "
                 f"{sweep_wall / vmapped:.1f} s | {', '.join(f'{m:.1f}' for m in sweep_last)} (last.pt) |")
    return "\n".join(lines), {"per_seed": rows, "vmapped": together, "vmapped_wall_s": round(together_wall, 1),
                              "sweep_wall_s": round(sweep_wall, 1), "sweep_last": sweep_last}


# 8. help pages ------------------------------------------------------------------------------

def help_table(repeats: int) -> tuple[str, dict]:
    """Whole-process time of each --help against `python -c "import torch"`, interleaved round by round
    so a busy spell of the machine hits all of them; medians, and each help's ratio to torch's import."""
    commands = {"python -c \"import torch\"": [sys.executable, "-c", "import torch"],
                **{f"{program} --help": [str(BIN / program), "--help"] for program in ("dqn-train", "dqn-eval", "dqn-report")}}
    times: dict = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True)
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in times.items()}
    torch_import = median['python -c "import torch"']
    lines = [f"| command | whole process (median of {repeats}) | range | ratio to `import torch` |", "|---|---|---|---|"]
    for name, values in times.items():
        lines.append(f"| `{name}` | {median[name]:.2f} s | {min(values):.2f}-{max(values):.2f} s | "
                     f"{median[name] / torch_import:.2f}x |")
    return "\n".join(lines), {"median_s": median, "ratio_to_torch": {n: round(m / torch_import, 2) for n, m in median.items()}}


# 9. PQN against purejaxql --------------------------------------------------------------------------

def pqn_table(python: str, purejaxql: Path, total_steps: int, workdir: Path) -> tuple[str, dict]:
    """purejaxql's PQN on Breakout-MinAtar (JAX, the whole loop jitted) and dqn-train's, whole
    processes at the same budget. dqn-train's time also holds its periodic and final greedy
    evaluations (2 x 100 episodes at the end), which purejaxql does not run."""
    started = time.perf_counter()
    out = subprocess.run([python, str(HERE / "purejaxql_pqn.py"), "--purejaxql", str(purejaxql),
                          "--total-steps", str(total_steps)], capture_output=True, text=True)
    theirs = ({"error": out.stderr.strip().splitlines()[-1:]} if out.returncode != 0 else
              {**json.loads(out.stdout.strip().splitlines()[-1]), "measured_wall_s": round(time.perf_counter() - started, 1)})
    ours = run_seed(0, ["experiment=pqn_minatar", f"total_steps={total_steps}"], workdir)
    lines = ["| PQN, Breakout-MinAtar, seed 0 | steps | whole process | env steps/s (whole process) | "
             "score |", "|---|---|---|---|---|"]
    if "error" in theirs:
        lines.append(f"| purejaxql `pqn_minatar.py` | failed: {theirs['error']} | | | |")
    else:
        lines.append(f"| purejaxql `pqn_minatar.py` (compile {theirs['compile_s']:.1f} s) | {theirs['steps']:,} | "
                     f"{theirs['measured_wall_s']:.1f} s | {theirs['steps'] / theirs['measured_wall_s']:,.0f} | "
                     f"{theirs['final_training_return']:.1f} (training return, last 5% of updates) |")
    if "error" in ours:
        lines.append(f"| `dqn-train experiment=pqn_minatar` | failed: {ours['error']} | | | |")
    else:
        last = ours["final_eval"]["last"]
        lines.append(f"| `dqn-train experiment=pqn_minatar` | {ours['steps']:,} | {ours['process_wall_s']:.1f} s | "
                     f"{ours['steps'] / ours['process_wall_s']:,.0f} | {last['mean']:.1f} ± {last['std']:.1f} "
                     "(last.pt, 100 greedy episodes) |")
        if "error" not in theirs:
            lines.append(f"| **dqn-train faster by** | | {theirs['measured_wall_s'] / ours['process_wall_s']:.2f}x | | |")
    return "\n".join(lines), {"purejaxql": theirs, "dqn_cli": ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small budgets: checks the script, not the speed")
    parser.add_argument("--sb3", action="store_true", help="also run SB3 + RL Zoo (needs the bench extra)")
    parser.add_argument("--json", type=Path, default=HERE / "results.json")
    parser.add_argument("--sections", default="1,2,3,4,5,6,7,8,9", help="which tables to (re)measure, e.g. 1,2; the "
                        "JSON keeps the other sections from its previous run")
    parser.add_argument("--jax-python", default=sys.executable, help="section 7: a Python with the bench-jax "
                        "extra installed (default: this one)")
    parser.add_argument("--purejaxql", type=Path, help="section 9: a checkout of github.com/mttga/purejaxql "
                        "(needs --jax-python with flax and chex as well; skipped without it)")
    parser.add_argument("--overrides", nargs="*", default=[], help="extra dqn-train overrides for every run, "
                        "e.g. --overrides device=cuda (the update-time table stays on the CPU)")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    EXTRA_OVERRIDES.extend(args.overrides)
    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="dqn-bench-"))
    quick = args.quick
    previous = json.loads(args.json.read_text()) if args.json.is_file() else {}
    results = {**previous, "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} "
               f"cores, torch {torch.__version__}, python {platform.python_version()}"}
    print(f"# dqn-cli benchmark, {results['date']} ({results['machine']})\n")

    cuda = torch.cuda.is_available() and any(o.startswith("device=cuda") for o in args.overrides)
    if "1" in sections:
        text, results["update"] = update_table(200 if quick else 2000)
        print("## 1. Update time against the bare-torch floor\n\n" + text + "\n", flush=True)
        if cuda:
            text, results["update_cuda"] = update_table(200 if quick else 2000, "cuda")
            print(f"## 1b. The same on {torch.cuda.get_device_name()}\n\n" + text + "\n", flush=True)

    if "2" in sections:
        text, results["tutorial"] = tutorial_table(1000 if quick else 10_000, workdir)
        print("## 2. The PyTorch tutorial's loop against dqn-cli at the tutorial's settings\n\n" + text + "\n", flush=True)

    if "3" in sections:
        seeds = [0] if quick else list(range(10))
        text, results["defaults"] = defaults_tables(seeds, ["total_steps=3000"] if quick else [], workdir)
        print("## 3. `dqn-train` (defaults, CartPole-v1), one process per seed\n\n" + text + "\n", flush=True)

    if "4" in sections:
        text, results["features"] = features_table(3000 if quick else 40_000, workdir)
        print("## 4. Throughput features\n\n" + text + "\n", flush=True)

    if "6" in sections:
        text, results["parallel"] = parallel_table([0, 1] if quick else [0, 1, 2, 3, 4], workdir,
                                                   ["total_steps=3000"] if quick else [])
        print("## 6. Parallel sweep against one job after another\n\n" + text + "\n", flush=True)

    if "7" in sections:
        text, results["jax_anchor"] = anchor_tables(args.jax_python, [0] if quick else [0, 1, 2], 2 if quick else 5,
                                                    workdir, ["total_steps=3000"] if quick else [],
                                                    ["--total-steps", "20000"] if quick else [])
        print("## 7. The JAX anchor (PureJaxRL's DQN loop) against dqn-train\n\n" + text + "\n", flush=True)

    if "8" in sections:
        text, results["help"] = help_table(3 if quick else 10)
        print("## 8. Help pages against importing torch\n\n" + text + "\n", flush=True)

    if "9" in sections and args.purejaxql:
        text, results["pqn_purejaxql"] = pqn_table(args.jax_python, args.purejaxql, 200_000 if quick else 1_000_000,
                                                   workdir)
        print("## 9. PQN: purejaxql's pqn_minatar.py against dqn-train experiment=pqn_minatar\n\n" + text + "\n",
              flush=True)

    if args.sb3 and "5" in sections:
        text, results["sb3"] = sb3_table([0] if quick else [0, 1, 2], 3000 if quick else 50_000)
        print("## 5. Stable-Baselines3 DQN, RL Zoo's tuned CartPole-v1 settings\n\n" + text + "\n", flush=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"(written {args.json})")


if __name__ == "__main__":
    main()
