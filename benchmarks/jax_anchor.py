"""A JAX anchor for the CartPole timings: our own re-implementation of the PureJaxRL DQN loop
(the whole training loop jitted as one `lax.scan`, gymnax's CartPole-v1 stepped inside it, a jnp
ring buffer, optax Adam, seeds vmapped), at PureJaxRL's published CartPole settings.

    python3 -m venv .venv-jax && .venv-jax/bin/pip install -e ".[bench-jax]"   # its own venv: gymnax
                                                                           # needs gymnasium < 1.4
    python benchmarks/jax_anchor.py --seeds 0 1 2          # one process per seed, whole-process time
    python benchmarks/jax_anchor.py --vmap 5                # five seeds vmapped in one process
    python benchmarks/jax_anchor.py --seeds 0 --total-steps 20000   # a quick check that it runs

Each run prints one JSON line: compile and training seconds, the whole process's wall time from
launch, and the final weights' greedy mean over 100 episodes (gymnax CartPole, up to 500 steps).
Run by hand, beside `benchmarks/seeds.py`; never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# PureJaxRL's dqn.py CartPole-v1 configuration.
SETTINGS = dict(num_envs=10, buffer_size=10_000, batch_size=128, total_steps=500_000, epsilon_start=1.0,
                epsilon_end=0.05, epsilon_anneal_steps=250_000, target_interval=500, lr=2.5e-4,
                learning_starts=10_000, train_interval=10, gamma=0.99, hidden=(120, 84))
EVAL_EPISODES = 100


def seconds_since_launch() -> float:
    ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
    return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")


def make_train(settings: dict):
    """train(key) -> final online parameters, for one seed; jit it, or vmap it over seeds."""
    import gymnax
    import jax
    import jax.numpy as jnp
    import optax

    env, env_params = gymnax.make("CartPole-v1")
    n_envs, capacity, batch = settings["num_envs"], settings["buffer_size"], settings["batch_size"]
    iterations = settings["total_steps"] // n_envs
    n_actions, obs_dim = env.num_actions, env.observation_space(env_params).shape[0]
    optimizer = optax.adam(settings["lr"])

    def init_params(key):
        sizes = (obs_dim, *settings["hidden"], n_actions)
        params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            key, wkey = jax.random.split(key)
            params.append((jax.nn.initializers.lecun_normal()(wkey, (fan_in, fan_out)), jnp.zeros(fan_out)))
        return params

    def q_values(params, obs):
        for weight, bias in params[:-1]:
            obs = jax.nn.relu(obs @ weight + bias)
        weight, bias = params[-1]
        return obs @ weight + bias

    def loss_fn(params, target_params, obs, actions, rewards, next_obs, dones):
        targets = rewards + (1.0 - dones) * settings["gamma"] * q_values(target_params, next_obs).max(axis=-1)
        taken = jnp.take_along_axis(q_values(params, obs), actions[:, None], axis=-1)[:, 0]
        return jnp.mean((taken - jax.lax.stop_gradient(targets)) ** 2)

    def train(key):
        key, reset_key, param_key = jax.random.split(key, 3)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, n_envs), env_params)
        params = init_params(param_key)
        # the ring buffer: transitions (obs, action, reward, next obs, done), written n_envs at a time
        buffer = (jnp.zeros((capacity, obs_dim)), jnp.zeros(capacity, jnp.int32), jnp.zeros(capacity),
                  jnp.zeros((capacity, obs_dim)), jnp.zeros(capacity))
        carry = (params, params, optimizer.init(params), buffer, jnp.int32(0), env_state, obs, key)

        def iteration(carry, step):
            params, target_params, opt_state, buffer, stored, env_state, obs, key = carry
            key, act_key, explore_key, step_key, sample_key = jax.random.split(key, 5)
            timesteps = (step + 1) * n_envs
            epsilon = jnp.maximum(settings["epsilon_start"] + (settings["epsilon_end"] - settings["epsilon_start"])
                                  * step * n_envs / settings["epsilon_anneal_steps"], settings["epsilon_end"])
            greedy = q_values(params, obs).argmax(axis=-1)
            random_actions = jax.random.randint(act_key, (n_envs,), 0, n_actions)
            actions = jnp.where(jax.random.uniform(explore_key, (n_envs,)) < epsilon, random_actions, greedy)
            next_obs, env_state, rewards, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(step_key, n_envs), env_state, actions, env_params)
            # gymnax resets inside step, so at an episode end the stored next obs is the reset one; as in
            # PureJaxRL, an end by either cause stops the bootstrap there
            dones = terminated | truncated
            slots = (stored + jnp.arange(n_envs)) % capacity
            buffer = tuple(field.at[slots].set(value) for field, value in
                           zip(buffer, (obs, actions, rewards, next_obs, dones.astype(jnp.float32))))
            stored = stored + n_envs

            def learn(state):
                params, opt_state = state
                idx = jax.random.randint(sample_key, (batch,), 0, jnp.minimum(stored, capacity))
                grads = jax.grad(loss_fn)(params, target_params, *(field[idx] for field in buffer))
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return optax.apply_updates(params, updates), opt_state

            learn_now = (timesteps > settings["learning_starts"]) & (timesteps % settings["train_interval"] == 0)
            params, opt_state = jax.lax.cond(learn_now, learn, lambda state: state, (params, opt_state))
            target_params = jax.lax.cond(timesteps % settings["target_interval"] == 0, lambda: params,
                                         lambda: target_params)
            return (params, target_params, opt_state, buffer, stored, env_state, next_obs, key), None

        carry, _ = jax.lax.scan(iteration, carry, jnp.arange(iterations))
        return carry[0]

    def evaluate(params, key):
        """Greedy mean return of `params` over EVAL_EPISODES gymnax episodes (up to 500 steps)."""
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, EVAL_EPISODES), env_params)

        def play(carry, step_key):
            obs, state, returns, alive = carry
            actions = q_values(params, obs).argmax(axis=-1)
            obs, state, rewards, terminated, truncated, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(step_key, EVAL_EPISODES), state, actions, env_params)
            dones = terminated | truncated
            returns = returns + rewards * alive
            return (obs, state, returns, alive * (1.0 - dones)), None

        carry = (obs, state, jnp.zeros(EVAL_EPISODES), jnp.ones(EVAL_EPISODES))
        (_, _, returns, _), _ = jax.lax.scan(play, carry, jax.random.split(key, env_params.max_steps_in_episode))
        return returns

    return train, evaluate


def run(seeds: list, settings: dict) -> dict:
    """Train len(seeds) seeds vmapped in one jitted call; time compile and training apart."""
    import jax
    import numpy as np

    train, evaluate = make_train(settings)
    keys = jax.vmap(jax.random.PRNGKey)(np.array(seeds))
    started = time.perf_counter()
    compiled = jax.jit(jax.vmap(train)).lower(keys).compile()
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    params = jax.block_until_ready(compiled(keys))
    train_s = time.perf_counter() - started
    returns = jax.jit(jax.vmap(evaluate))(params, jax.vmap(jax.random.PRNGKey)(np.array(seeds) + 10_000))
    scores = np.asarray(returns)
    return {"seeds": seeds, "total_steps_per_seed": settings["total_steps"], "compile_s": round(compile_s, 2),
            "train_s": round(train_s, 2), "final_mean": [round(float(s.mean()), 1) for s in scores],
            "final_std": [round(float(s.std()), 1) for s in scores],
            "process_wall_s": round(seconds_since_launch(), 2), "jax": jax.__version__,
            "device": str(jax.devices()[0])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", help="one process per seed")
    parser.add_argument("--vmap", type=int, help="this many seeds (0..N-1) vmapped in one process")
    parser.add_argument("--total-steps", type=int, default=SETTINGS["total_steps"])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process's seed
    args = parser.parse_args()
    settings = {**SETTINGS, "total_steps": args.total_steps}
    if args.one is not None or args.vmap:
        print(json.dumps(run([args.one] if args.one is not None else list(range(args.vmap)), settings)), flush=True)
        return
    for seed in args.seeds or [0, 1, 2]:
        launched = time.perf_counter()
        result = subprocess.run([sys.executable, __file__, "--one", str(seed), "--total-steps", str(args.total_steps)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            print(json.dumps({"seed": seed, "error": result.stderr.strip().splitlines()[-1:]}))
            continue
        row = json.loads(result.stdout.strip().splitlines()[-1])
        row["measured_wall_s"] = round(time.perf_counter() - launched, 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
