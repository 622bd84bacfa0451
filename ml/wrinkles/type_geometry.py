"""Landmark-geometry wrinkle typing: the clinical wrinkle types are named after where the lines lie, so
each of the 9 classes of the ``wrinkle-boxes`` folder is a facial region built from the 68 landmarks
and the 33-zone atlas (definitions and clinical sources in ``docs/wrinkles.md``), and a type is found
where the wrinkle segmentation (the shipped model's mask, cut to the analysed skin) has lines inside
its region. These are geometry rules on top of the segmentation, not a learned detector.

Per class, the fitted rules (:class:`TypeRules`, chosen on the ``train`` split only by
:func:`ml.wrinkles.type_fitting.fit_rules`) say

* ``margin``: how far the region is grown (dilation, in inter-pupillary distances, IPD);
* ``box``: ``lines`` (one box per wrinkle line, i.e. connected component, inside the region),
  ``clusters`` (one box per group of lines closer than 0.05 IPD to each other), ``pixels`` (one box
  around the region's wrinkle pixels) or ``region`` (the region's box); ``anchored-lines``,
  ``anchored-clusters`` and ``anchored-pixels`` keep the centre of those boxes but give them the class's
  typical size (``box_size``: median width and height, in IPD, of the class's human boxes on ``train``),
  since the annotators box single lines of a fairly constant size;
* ``reference_coverage``: the class's median wrinkle coverage on ``train``, which scales the score;
* ``threshold``: the score from which a type counts as *found* on the photo page (best F1 on
  ``train`` at IoU 0.5); the mAP evaluation, like Ultralytics' validation, ranks every candidate.

The score of a box is ``c / (c + reference_coverage)`` with ``c`` its wrinkle pixels ÷ the region's
analysed-skin pixels: 0.5 at the class's median coverage, a ranking score rather than a probability.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ml.core.alignment import eye_centers
from ml.wrinkles.crop import AnalysisFrame

TYPE_CLASSES: tuple[str, ...] = (
    "bunny_line",
    "chin",
    "crows_feet",
    "forehead",
    "frown_line",
    "gummy_smile",
    "masseter",
    "sad_smile",
    "smoker_lines",
)
# How the pages and the measures name each class.
TYPE_LABELS: dict[str, str] = {
    "bunny_line": "Bunny lines",
    "chin": "Chin lines",
    "crows_feet": "Crow's feet",
    "forehead": "Forehead lines",
    "frown_line": "Frown (glabellar) lines",
    "gummy_smile": "Gummy-smile (nasolabial) lines",
    "masseter": "Masseter-area lines",
    "sad_smile": "Marionette (sad-smile) lines",
    "smoker_lines": "Smoker's (perioral) lines",
}
BOX_MODES = ("lines", "clusters", "pixels", "region")
ANCHORED = "anchored-"
RULE_BOX_MODES = (*BOX_MODES, *(ANCHORED + mode for mode in ("lines", "clusters", "pixels")))
# Lines closer than this (IPD) form one cluster (``clusters`` boxes).
CLUSTER_GAP = 0.05
MARGINS = (0.0, 0.1, 0.2)
# A wrinkle line shorter than this many pixels is noise, not a line to box.
MIN_LINE_PIXELS = 12
# Atlas zones each class's region is made of (None: a landmark polygon, see ``_polygons``), per side.
_ZONES: dict[str, tuple[tuple[str, ...], ...] | None] = {
    "bunny_line": (("NBA",),),
    "chin": (("FCS", "LMS"),),
    "crows_feet": None,
    "forehead": None,
    "frown_line": (("CGA",),),
    "gummy_smile": (("RNF",), ("LNF",)),
    "masseter": (("RSA", "RPA", "RJA"), ("LSA", "LPA", "LJA")),
    "sad_smile": None,
    "smoker_lines": (("UPA", "FPA"),),
}


@dataclass(frozen=True)
class ClassRule:
    """The fitted rule of one class (see the module doc)."""

    margin: float = 0.1
    box: str = "lines"
    reference_coverage: float = 0.01
    threshold: float = 0.5
    box_size: tuple[float, float] | None = None

    @property
    def base_box(self) -> str:
        """The box mode that finds the candidates (``anchored-`` modes then resize them)."""
        return self.box.removeprefix(ANCHORED)

    def final_box(self, box: list[float], ipd: float, photo_shape: tuple[int, ...]) -> list[float]:
        """A candidate's box as the rule reports it, in the pixels of a photo of ``photo_shape`` (``ipd``
        too): as found, or re-sized to ``box_size`` about its centre for the anchored modes; cut to the
        photo either way (a box anchored near the photo's edge would reach beyond it)."""
        if self.box.startswith(ANCHORED) and self.box_size is not None:
            centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            half_w, half_h = self.box_size[0] * ipd / 2, self.box_size[1] * ipd / 2
            box = [centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h]
        height, width = float(photo_shape[0]), float(photo_shape[1])
        return [
            min(max(box[0], 0.0), width),
            min(max(box[1], 0.0), height),
            min(max(box[2], 0.0), width),
            min(max(box[3], 0.0), height),
        ]


@dataclass(frozen=True)
class TypeRules:
    """Every class's rule, and how they were chosen."""

    rules: dict[str, ClassRule]
    fitted_on: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"rules": {name: asdict(rule) for name, rule in self.rules.items()}, "fitted_on": self.fitted_on},
            indent=2,
        )

    @classmethod
    def read(cls, path: Path) -> TypeRules:
        stored = json.loads(Path(path).read_text())
        rules = {}
        for name, rule in stored["rules"].items():
            size = rule.pop("box_size", None)
            rules[name] = ClassRule(**rule, box_size=None if size is None else (size[0], size[1]))
        return cls(rules, stored["fitted_on"])


class FaceFrame:
    """Face-frame coordinates (as :func:`ml.measures.facial.face_frame`: origin midway between the eye
    centres, x towards the image-right eye, y towards the chin, one unit = the IPD) and back."""

    def __init__(self, landmarks: np.ndarray) -> None:
        right_eye, left_eye = eye_centers(np.asarray(landmarks, dtype=np.float64))
        axis = left_eye - right_eye
        self.ipd = float(np.hypot(*axis))
        self.x_axis = axis / self.ipd
        self.y_axis = np.array([-self.x_axis[1], self.x_axis[0]])
        self.origin = (right_eye + left_eye) / 2
        self.points = self.to_frame(landmarks)

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        centred = np.asarray(points, dtype=np.float64) - self.origin
        return np.stack([centred @ self.x_axis, centred @ self.y_axis], axis=-1) / self.ipd

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64) * self.ipd
        return self.origin + points[:, :1] * self.x_axis + points[:, 1:2] * self.y_axis


def _polygons(name: str, frame: FaceFrame) -> list[np.ndarray]:
    """The landmark polygons (face frame) of the classes that no atlas zone covers, one per side."""
    f = frame.points
    if name == "forehead":
        # Above the brows (0.08 IPD clear of them) to the estimated hairline 0.8 IPD higher, tail to tail.
        brows = f[17:27]
        return [np.concatenate([brows - [0, 0.08], brows[::-1] - [0, 0.88]])]
    if name == "crows_feet":
        # Lateral canthal area: from just outside the lateral canthus (36 image-left, 45 image-right)
        # 0.4 IPD outwards, 0.3 IPD above to 0.35 IPD below it.
        found = []
        for canthus, outwards in ((f[36], -1.0), (f[45], 1.0)):
            near, far = canthus[0] + 0.03 * outwards, canthus[0] + 0.43 * outwards
            top, bottom = canthus[1] - 0.30, canthus[1] + 0.35
            found.append(np.array([[near, top], [far, top], [far, bottom], [near, bottom]]))
        return found
    if name == "sad_smile":
        # Marionette line: from the mouth corner (48, 54) down to the jaw line (points 4-6, 10-12).
        found = []
        for corner, jaw, outwards in ((f[48], f[4:7], -1.0), (f[54], f[10:13][::-1], 1.0)):
            found.append(
                np.array([corner + [-0.08 * outwards, 0.0], corner + [0.22 * outwards, -0.02], *jaw])
            )
        return found
    raise KeyError(name)


def class_regions(
    name: str, landmarks: np.ndarray, shape: tuple[int, int], zone_masks: np.ndarray
) -> list[np.ndarray]:
    """The class's region(s) in the photo, one bool mask per side for the bilateral classes, before any
    margin and before the cut to the analysed skin."""
    from ml.zones.atlas import ZONE_INDEX

    zones = _ZONES[name]
    if zones is not None:
        return [np.any([zone_masks[ZONE_INDEX[code]] for code in side], axis=0) for side in zones]
    frame = FaceFrame(landmarks)
    regions = []
    for polygon in _polygons(name, frame):
        mask = np.zeros(shape, dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(frame.to_photo(polygon)).astype(np.int32)], 1)
        regions.append(mask.astype(bool))
    return regions


def grow(region: np.ndarray, margin: float, ipd: float) -> np.ndarray:
    """``region`` dilated by ``margin`` IPD (a disc): every pixel within that Euclidean distance of it.
    A distance transform rather than ``cv2.dilate``, whose cost grows with the disc's area: on a 12-MP
    photo (IPD about 600 px) a dilation took seconds, the transform takes milliseconds."""
    radius = int(round(margin * ipd))
    if radius <= 0:
        return region
    outside = (~region.astype(bool)).astype(np.uint8)
    return cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= radius


def _box_of(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def region_candidates(
    region: np.ndarray,
    wrinkles: np.ndarray,
    lines: np.ndarray,
    skin: np.ndarray,
    mode: str,
    clusters: np.ndarray | None = None,
    min_line_pixels: float = MIN_LINE_PIXELS,
) -> list[tuple[float, list[float]]]:
    """``(coverage, box)`` of every candidate box of one region: its wrinkle pixels ÷ the region's
    analysed-skin pixels, box ``[x0, y0, x1, y1]`` in the masks' pixels; none without wrinkle pixels.
    A line (or cluster) of fewer than ``min_line_pixels`` of those pixels gives no box."""
    region = region & skin
    region_pixels = int(region.sum())
    inside = wrinkles & region
    if not region_pixels or not inside.any():
        return []
    if mode == "region":
        return [(float(inside.sum()) / region_pixels, _box_of(region))]
    if mode == "pixels":
        return [(float(inside.sum()) / region_pixels, _box_of(inside))]
    groups = clusters if mode == "clusters" and clusters is not None else lines
    found = []
    labels, counts = np.unique(groups[inside], return_counts=True)
    for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
        if count >= min_line_pixels:
            found.append((count / region_pixels, _box_of(inside & (groups == label))))
    return found


def score(coverage: float, reference: float) -> float:
    """The ranking score of a box (module doc)."""
    return coverage / (coverage + reference)


@dataclass
class TypeEvidence:
    """What the geometry typing of one photo needs: the 68 landmarks, the analysed wrinkle mask, the
    analysed skin (the whole the figures are measured in) and the 33 atlas zones drawn from the
    landmarks (``ml.zones.landmark_model``: the rules were fitted on them), all in ``frame`` (the
    analysis frame, :class:`ml.wrinkles.crop.AnalysisFrame`; the photo's pixels when not given). Lengths
    in IPD and coverages do not depend on the frame; boxes and the line-size floor are in photo pixels."""

    landmarks: np.ndarray
    wrinkles: np.ndarray
    skin: np.ndarray
    zone_masks: np.ndarray
    frame: AnalysisFrame | None = None

    def __post_init__(self) -> None:
        if self.frame is None:
            self.frame = AnalysisFrame.photo(self.skin.shape)
        self.lines = cv2.connectedComponents(self.wrinkles.astype(np.uint8), connectivity=8)[1]
        self.ipd = FaceFrame(self.landmarks).ipd
        # Clusters: the lines of the wrinkle mask closed by a disc of CLUSTER_GAP (labels on the mask).
        closed = grow(self.wrinkles, CLUSTER_GAP / 2, self.ipd)
        self.clusters = np.where(
            self.wrinkles, cv2.connectedComponents(closed.astype(np.uint8), connectivity=8)[1], 0
        )

    @property
    def photo_ipd(self) -> float:
        """The IPD in photo pixels."""
        return self.ipd * self.frame.photo_px

    def regions(self, name: str, margin: float) -> list[np.ndarray]:
        """The class's region(s) grown by ``margin`` and cut to the analysed skin."""
        return [
            grow(region, margin, self.ipd) & self.skin
            for region in class_regions(name, self.landmarks, self.skin.shape, self.zone_masks)
        ]

    def candidates(self, name: str, margin: float, mode: str) -> list[tuple[float, list[float]]]:
        """``(coverage, box)`` of the class's candidates (:func:`region_candidates`), boxes in photo
        pixels; a line of fewer than ``MIN_LINE_PIXELS`` photo pixels gives none."""
        min_line_pixels = MIN_LINE_PIXELS / self.frame.photo_px**2
        return [
            (coverage, self.frame.box_to_photo(box))
            for region in self.regions(name, margin)
            for coverage, box in region_candidates(
                region, self.wrinkles, self.lines, self.skin, mode, self.clusters, min_line_pixels
            )
        ]


@dataclass(frozen=True)
class GeometryTypeDetector:
    """Wrinkle types by landmark geometry (module doc), with the same ``detect`` as the YOLO detector."""

    rules: TypeRules
    names: dict[int, str] = field(default_factory=lambda: dict(enumerate(TYPE_CLASSES)))

    def detect(
        self, image: np.ndarray, evidence: TypeEvidence | None = None, confidence: float | None = None
    ) -> list[dict[str, Any]]:
        """Wrinkle types found: ``{"class", "score", "box": [x0, y0, x1, y1], "region"}`` in photo pixels,
        best first, each at least its class's fitted threshold (or ``confidence`` when given; 0 lists
        every candidate, as the mAP evaluation does)."""
        if evidence is None:
            raise ValueError("The geometry type detector needs the landmarks and the wrinkle mask.")
        found = []
        for name, rule in self.rules.rules.items():
            cut = rule.threshold if confidence is None else confidence
            for coverage, box in evidence.candidates(name, rule.margin, rule.base_box):
                value = score(coverage, rule.reference_coverage)
                if value >= cut:
                    found.append(
                        {
                            "class": name,
                            "score": value,
                            "box": rule.final_box(box, evidence.photo_ipd, evidence.frame.photo_shape),
                            "coverage": coverage,
                        }
                    )
        return sorted(found, key=lambda item: -item["score"])


def type_regions(evidence: TypeEvidence) -> dict[str, np.ndarray]:
    """Every class's anatomical region (both sides together, no margin, cut to the analysed skin): the
    fixed regions the per-type wrinkle figures are measured in, whatever rules are fitted."""
    return {name: np.any(evidence.regions(name, 0.0), axis=0) for name in TYPE_CLASSES}
