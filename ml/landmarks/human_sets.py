"""Human-labelled landmark sets: folders in the landmarks300w format, the fixed 300-W splits, London.

* A **landmark folder** holds ``images/`` and ``landmarks.json`` = ``{"faces": {"images/NAME.jpg":
  [[x, y] × 68]}}`` in iBUG-68 order, 0-based pixels (``landmarks300w``, ``landmarks68``).
* **Fixed 300-W splits**: :func:`landmarks300w_split` assigns every face of ``landmarks300w`` to
  ``train``, ``val`` or ``test`` from its file name alone (a seeded shuffle of the *source photos*, so
  faces cropped from one photo stay together). ``val`` and ``test`` hold human labels only and are never
  trained on or pseudo-labelled. dlib's predictor was trained on all of these images, so its figures on
  every split are in-sample.
* **London** (Face Research Lab London Set, CC-BY 4.0): manual 189-point WebMorph templates of the
  neutral photos, of which eight points have iBUG-68 equivalents (:data:`LONDON_TO_IBUG68`). No landmark
  model used here trained on these faces — an out-of-sample human check for dlib too.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLIT_SEED = "facet-landmarks300w-v1"
SPLIT_FRACTIONS = {"test": 0.15, "val": 0.10}
SPLITS = ("train", "val", "test")

# WebMorph FRL template index → iBUG-68 index: outer/inner eye corners, mouth corners, subnasale, chin.
LONDON_TO_IBUG68: dict[int, int] = {18: 36, 22: 39, 23: 42, 27: 45, 87: 48, 93: 54, 55: 33, 129: 8}
LONDON_TEMPLATE_WIDTH = 1350.0


@dataclass(frozen=True, eq=False)
class LabelledFace:
    """One human-labelled face: image path, a short name, ``(68, 2)`` points (NaN where unlabelled)."""

    image: Path
    name: str
    points: np.ndarray

    @property
    def labelled(self) -> np.ndarray:
        """Boolean mask of the labelled points."""
        return np.isfinite(self.points).all(axis=1)


class LandmarkSetError(ValueError):
    """A folder is not a readable landmark set; the message says why."""


def read_landmark_folder(folder: Path) -> list[LabelledFace]:
    """Faces of a folder in the landmarks300w format, sorted by name."""
    folder = Path(folder)
    document_path = folder / "landmarks.json"
    if not document_path.is_file():
        raise LandmarkSetError(f"{folder} has no landmarks.json (expected images/ and landmarks.json).")
    faces_document = json.loads(document_path.read_text()).get("faces")
    if not isinstance(faces_document, dict) or not faces_document:
        raise LandmarkSetError(f"{document_path} has no 'faces' mapping of image path to 68 points.")
    faces = []
    for relative, points in sorted(faces_document.items()):
        array = np.asarray(points, dtype=np.float64)
        if array.shape != (68, 2):
            raise LandmarkSetError(
                f"{document_path}: {relative} has points of shape {array.shape}, not (68, 2)."
            )
        faces.append(LabelledFace(image=folder / relative, name=Path(relative).stem, points=array))
    return faces


def source_photo(name: str) -> str:
    """The source photo of a landmarks300w face: ``afw_1130084326_2`` → ``afw_1130084326``."""
    return re.sub(r"_\d+$", "", name)


def landmarks300w_split(names: list[str]) -> dict[str, str]:
    """``name → train | val | test``, fixed by a hash of each source photo's name (no randomness state).

    Source photos are ordered by ``sha256(SPLIT_SEED + photo)``; the first 15 % of faces (whole photos)
    form ``test``, the next 10 % ``val``, the rest ``train``. Adding faces of new photos does not move
    existing ones between splits.
    """
    photos: dict[str, list[str]] = {}
    for name in names:
        photos.setdefault(source_photo(name), []).append(name)
    order = sorted(photos, key=lambda photo: hashlib.sha256(f"{SPLIT_SEED}:{photo}".encode()).hexdigest())
    total = len(names)
    limits = {
        "test": SPLIT_FRACTIONS["test"] * total,
        "val": (SPLIT_FRACTIONS["test"] + SPLIT_FRACTIONS["val"]) * total,
    }
    assignment: dict[str, str] = {}
    assigned = 0
    for photo in order:
        split = "test" if assigned < limits["test"] else "val" if assigned < limits["val"] else "train"
        for name in photos[photo]:
            assignment[name] = split
        assigned += len(photos[photo])
    return assignment


def read_london(root: Path) -> list[LabelledFace]:
    """London neutral photos with the eight iBUG-equivalent points of their manual templates."""
    root = Path(root)
    templates = sorted((root / "templates").glob("*.tem"))
    if not templates:
        raise LandmarkSetError(f"{root} has no templates/*.tem files.")
    faces = []
    for template in templates:
        image = root / "neutral" / f"{template.stem}.jpg"
        if not image.is_file():
            continue
        lines = template.read_text().split("\n")
        count = int(lines[0])
        values = np.asarray([[float(value) for value in line.split()[:2]] for line in lines[1 : count + 1]])
        from PIL import Image

        with Image.open(image) as opened:
            scale = opened.size[0] / LONDON_TEMPLATE_WIDTH
        points = np.full((68, 2), np.nan)
        for source, target in LONDON_TO_IBUG68.items():
            points[target] = values[source] * scale
        faces.append(LabelledFace(image=image, name=template.stem, points=points))
    return faces


def read_human_set(path: Path, split: str | None = None) -> list[LabelledFace]:
    """A landmark folder, or the London set root; ``split`` selects a fixed landmarks300w split.

    ``split`` is only meaningful for ``landmarks300w`` (any folder whose faces follow its naming);
    ``None`` or ``"all"`` keeps every face.
    """
    path = Path(path)
    if (path / "templates").is_dir() and not (path / "landmarks.json").is_file():
        faces = read_london(path)
    else:
        faces = read_landmark_folder(path)
    if split in (None, "all"):
        return faces
    if split not in SPLITS:
        raise LandmarkSetError(f"Unknown split '{split}'; choose one of {', '.join(SPLITS)} or all.")
    assignment = landmarks300w_split([face.name for face in faces])
    return [face for face in faces if assignment[face.name] == split]
