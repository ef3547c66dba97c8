"""What every training loop shares: the run's assembly (assembly.Run), its checkpointer and
evaluator, and `train.train`, which drives one run from set-up to summary.json. parts.py is the
seam a loop sees (docs/development.md)."""
