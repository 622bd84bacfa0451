"""How much work one normality analysis does: K normalized candidates and the step counts.

The 1–7 rating is only valid with the settings its regressor's features were extracted with, so the
command line and the worker both take them from the fitted regressor (``normalizer_settings``), and
fall back to the embedded normalizer's defaults when no regressor is fitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The embedded normalizer's step counts. Projection: chosen on one half of the held-out faces by the
# simulated lip-notch test and confirmed on the other half (docs/reports/normality-evaluation.md, section 3);
# the encoder's latent already starts close, so few steps suffice. Adaptation: 8 since the longer-trained
# prior (docs/reports/normality-real-faces.md, section 21): a sharper prior needs less personalisation, and
# fewer steps leave the normal face less free to copy a displaced lip.
DEFAULT_PROJECTION_STEPS = 3
DEFAULT_ADAPT_STEPS = 8
# The normal face from the fit to the aligned face alone (False) or averaged with the fit to its mirror
# image (True), which evens out the prior's left-right differences. Measured, not adopted: it turned one
# development pair the wrong way (docs/reports/normality-real-faces.md, section 22).
DEFAULT_MIRROR_AVERAGE = False
# Boyaci et al. (2020) average the features over K = 5 normalized candidates.
DEFAULT_CANDIDATES = 5


@dataclass(frozen=True)
class NormalizationSettings:
    """K normalized candidates and the projection and adaptation steps of each."""

    candidates: int
    projection_steps: int
    adapt_steps: int


def analysis_settings(
    regressor: Mapping[str, Any] | None,
    projection_steps: int | None = None,
    adapt_steps: int | None = None,
) -> NormalizationSettings:
    """Explicit step counts first, then the regressor's extraction settings, then the defaults.

    Without a regressor there is no rating to average features for, so one candidate is enough.
    """
    fitted = dict((regressor or {}).get("normalizer_settings", {}))
    if regressor is None:
        candidates = 1
    else:
        candidates = int(regressor.get("candidates", fitted.get("candidates", DEFAULT_CANDIDATES)))
    if projection_steps is None:
        projection_steps = int(fitted.get("projection_steps", DEFAULT_PROJECTION_STEPS))
    if adapt_steps is None:
        adapt_steps = int(fitted.get("adapt_steps", DEFAULT_ADAPT_STEPS))
    return NormalizationSettings(candidates, projection_steps, adapt_steps)
