"""Command-line entry points (train.py and explain.py are thin wrappers around these)."""
