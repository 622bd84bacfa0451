"""Locations of data, weights and the code version, configurable through the environment."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import ml

DATA_DIR_ENV = "FACET_DATA_DIR"
WEIGHTS_DIR_ENV = "FACET_WEIGHTS_DIR"


def repo_root() -> Path:
    """The checkout that contains the ``ml`` package."""
    return Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The research data directory: ``$FACET_DATA_DIR``, else ``<repo>/../shared/data``.

    The path is returned whether or not it exists; use :func:`data_dir_or_none` to test for it.
    """
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return (repo_root().parent / "shared" / "data").resolve()


def data_dir_or_none() -> Path | None:
    """The data directory if it exists, else ``None`` (callers skip data-dependent work)."""
    path = data_dir()
    return path if path.is_dir() else None


def weights_dir() -> Path:
    """Where trained weights live: ``$FACET_WEIGHTS_DIR``, else ``<repo>/ml/weights``."""
    configured = os.environ.get(WEIGHTS_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return repo_root() / "ml" / "weights"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe`` of the checkout (commit hash, ``-dirty`` when modified), else the package version."""
    try:
        completed = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=repo_root(),
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ml.__version__
    described = completed.stdout.strip()
    if completed.returncode != 0 or not described:
        return ml.__version__
    return described


TORCH_THREADS_ENV = "FACET_TORCH_THREADS"


def apply_torch_threads(default: int | None = None) -> None:
    """Honour ``$FACET_TORCH_THREADS`` (set by the shared-CPU ``heavy`` wrapper) in torch, else use
    ``default`` when given (worker processes: 1, so jobs side by side do not oversubscribe the cores)."""
    configured = os.environ.get(TORCH_THREADS_ENV) or (str(default) if default else None)
    if not configured:
        return
    import torch

    threads = max(1, int(configured))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
