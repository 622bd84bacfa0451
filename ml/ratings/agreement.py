"""Pre/post agreement: does a predicted change point the same way as the raters' change?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SignAgreement:
    """Subjects whose predicted change has the sign of the raters' change, among those where both exist
    and the raters saw a change at all."""

    agree: int
    usable: int
    pairs: int

    @property
    def share(self) -> float | None:
        return self.agree / self.usable if self.usable else None


def sign_agreement(changes: Sequence[tuple[float, float | None]]) -> SignAgreement:
    """``changes``: ``(raters' change, predicted change or None)`` per subject. Pairs without a prediction
    or with no change in the raters' mean have no sign to agree with and are left out of the share."""
    usable = [(raters, predicted) for raters, predicted in changes if predicted is not None and raters != 0]
    agree = sum(1 for raters, predicted in usable if (predicted > 0) == (raters > 0) and predicted != 0)
    return SignAgreement(agree=agree, usable=len(usable), pairs=len(changes))
