"""dqn-cli: a config-driven experiment CLI for Deep Q-Networks."""

__version__ = "0.1.0"
