"""Gymnasium environments: making one (make.py), the training vector env (vector.py, batched.py),
what the loop makes of a step (transitions.py), env-state capture for exact resume (snapshots.py),
and Atari's preprocessing (atari.py)."""

from dqn_cli.envs.batched import BatchedTrainingEnv, make_batched_env, reset_like_single_envs
from dqn_cli.envs.make import (EVAL_SEED_OFFSET, FINAL_EVAL_SEED_OFFSET, TRAIN_SEED_OFFSET, check_spaces,
                               import_env_module, make_env)
from dqn_cli.envs.snapshots import capture_env_states, restart_episodes, restore_env_states
from dqn_cli.envs.transitions import game_over, real_next_obs, shape_rewards
from dqn_cli.envs.vector import BATCHED_TRAINING_FROM, make_vector_env

__all__ = ["BATCHED_TRAINING_FROM", "BatchedTrainingEnv", "EVAL_SEED_OFFSET", "FINAL_EVAL_SEED_OFFSET",
           "TRAIN_SEED_OFFSET", "capture_env_states", "check_spaces", "game_over", "import_env_module",
           "make_batched_env", "make_env", "make_vector_env", "real_next_obs", "reset_like_single_envs",
           "restart_episodes", "restore_env_states", "shape_rewards"]
