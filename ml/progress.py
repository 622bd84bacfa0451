"""Progress reports and cancellation of long computations, shared by every pipeline.

A pipeline calls ``progress(fraction, message)`` as it advances (``fraction`` from 0 to 1). The
caller's callback may raise :class:`Cancelled` to stop the work: the command line never does, a
worker does when someone cancelled the job. Pipelines let it propagate.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[float, str], None]


class Cancelled(Exception):
    """Someone cancelled the run; raised from a progress callback or a cancel check."""


def report(progress: ProgressCallback | None, fraction: float, message: str) -> None:
    """Call ``progress`` when there is one."""
    if progress is not None:
        progress(fraction, message)


def scaled(
    progress: ProgressCallback | None, start: float, end: float, step: float = 0.005
) -> ProgressCallback:
    """A callback for one stage: maps its 0–1 onto [start, end] of ``progress`` and reports at most
    every ``step`` (each report may be a database write and a cancellation check)."""
    last = [-1.0]

    def stage(fraction: float, message: str) -> None:
        value = start + (end - start) * min(max(fraction, 0.0), 1.0)
        if value - last[0] >= step or fraction >= 1.0:
            last[0] = value
            report(progress, value, message)

    return stage
