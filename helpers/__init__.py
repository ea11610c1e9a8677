"""Helpers for measuring, analysing and estimating the energy of deep-learning training.

One concept per module; nothing is read, created or configured at import time.
"""

__version__ = "0.1.0"
