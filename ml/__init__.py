"""Facet machine-learning library: pure Python, no Django.

Run ``python -m ml --help`` for the command-line interface.
"""

__version__ = "0.1.0"
