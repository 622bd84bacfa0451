"""Which face of a photo is the study subject's: one rule, used by every pipeline and page.

**The subject's face is the detected face with the largest box area** (ties: the higher detector
score, then the first listed). Clinical photos are framed on the patient; a bystander, a reflection
or a poster in the background is smaller. A detector's score is not used first because it says how
sure the detector is that a box holds *a* face, not which face the photo is about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class NoFaceError(ValueError):
    """The photo shows no face, so an analysis that needs one has nothing to measure."""


def _box(face: Any) -> Sequence[float]:
    box = face.get("box") if isinstance(face, Mapping) else face.box
    return box if box is not None and len(box) == 4 else (0.0, 0.0, 0.0, 0.0)


def _score(face: Any) -> float:
    return float(face.get("score", 0.0) if isinstance(face, Mapping) else getattr(face, "score", 0.0))


def subject_index(faces: Sequence[Any]) -> int | None:
    """Index of the subject's face among ``faces`` (objects with ``box``/``score``, or their JSON
    dicts), or ``None`` when there is none."""
    if not faces:
        return None

    def rank(item: tuple[int, Any]) -> tuple[float, float, int]:
        index, face = item
        x0, y0, x1, y1 = (float(value) for value in _box(face))
        return (max(0.0, x1 - x0) * max(0.0, y1 - y0), _score(face), -index)

    return max(enumerate(faces), key=rank)[0]


def subject_face(faces: Sequence[Any]) -> Any | None:
    """The subject's face among ``faces`` (see :func:`subject_index`)."""
    index = subject_index(faces)
    return None if index is None else faces[index]


def subject_landmarks(faces: Sequence[Any], no_face: str = "No face was found in the photo.") -> np.ndarray:
    """``(68, 2)`` landmarks of the subject's face; :class:`NoFaceError` with ``no_face`` without one."""
    face = subject_face(faces)
    if face is None:
        raise NoFaceError(no_face)
    points = face["landmarks"] if isinstance(face, Mapping) else face.landmarks
    return np.asarray(points, dtype=np.float64)
