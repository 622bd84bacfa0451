"""What the analysis layer tells the study layer about analyses, without being imported by it.

The studies app sits below the analysis app and never imports it, yet the study forms and services
must refuse analyses that cannot run because their model is untrained. The analysis app registers
that knowledge when Django starts (``AnalysisConfig.ready``).
"""

from collections.abc import Callable

UntrainedKinds = Callable[[], dict[str, str]]

_untrained_kinds: UntrainedKinds = dict


def register(untrained: UntrainedKinds) -> None:
    """Set the function returning ``{analysis kind: why it cannot run}`` for kinds without a trained model."""
    global _untrained_kinds
    _untrained_kinds = untrained


def untrained_kinds() -> dict[str, str]:
    """Analysis kinds that cannot give results now, each with the message saying what to train."""
    return _untrained_kinds()
