"""Zone and face-part shapes from 68 iBUG landmarks (the geometry behind :mod:`ml.zones.atlas`).

All construction happens in a face frame per side: ``u`` points away from the midline on that side,
``v`` points up (towards the forehead), the origin is the nasion (point 27) and lengths are in
inter-ocular distances (IOD, between eye centres). A left zone is written once with patient-left
indices (image right); the right zone uses the same code with mirrored indices and ``u`` flipped.
Adjacent zones are built from the same vertices so that they meet without overlapping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.zones.atlas import IBUG_MIRROR, N_LANDMARKS, ZONE_ABBREVIATIONS

INSET = 0.22  # width of the preauricular and jawline bands inside the face contour, IOD
FOREHEAD_HEIGHT = 0.8  # brow-to-hairline estimate, IOD (no hairline landmark exists)

# Anatomical overlaps the atlas keeps (per side for L/R zones). Every other pair of zones is made
# disjoint: a zone gives way to the zones listed before it in ZONE_PRECEDENCE, so landmark noise on
# unusual faces cannot create overlaps that anatomy does not have.
DESIGNED_OVERLAPS: frozenset[frozenset[str]] = frozenset(
    frozenset(pair)
    for side in "LR"
    for pair in (
        (f"{side}NF", f"{side}AA"),
        (f"{side}NF", f"{side}SA"),
        (f"{side}NF", f"{side}OC"),
        (f"{side}NF", "UPA"),
        (f"{side}NF", "FPA"),
        (f"{side}OC", "FPA"),
    )
) | frozenset({frozenset(("FPA", "UPA")), frozenset(("FPA", "LMS")), frozenset(("FFA", "CGA"))})

ZONE_PRECEDENCE: tuple[str, ...] = (
    "FUL",
    "FLW",
    "NBA",
    "LBA",
    "RBA",
    "LUL",
    "RUL",
    "FCS",
    "LMS",
    "LTA",
    "RTA",
    "LPA",
    "RPA",
    "LJA",
    "RJA",
    "LMI",
    "RMI",
    "LLI",
    "RLI",
    "CGA",
    "FFA",
    "UPA",
    "LOC",
    "ROC",
    "FPA",
    "LNF",
    "RNF",
    "LAA",
    "RAA",
    "LZA",
    "RZA",
    "LSA",
    "RSA",
)


@dataclass(frozen=True)
class Polygon:
    """A closed polygon, ``(N, 2)`` image points."""

    points: np.ndarray


@dataclass(frozen=True)
class Band:
    """A polyline ``(N, 2)`` buffered by ``half_width`` pixels (round caps and joints)."""

    points: np.ndarray
    half_width: float


@dataclass(frozen=True)
class Disc:
    """A disc of ``radius`` pixels around ``centre``."""

    centre: np.ndarray
    radius: float


Shape = Polygon | Band | Disc


@dataclass(frozen=True)
class ZoneShapes:
    """A region: the union of ``include`` minus the union of ``exclude``."""

    include: tuple[Shape, ...]
    exclude: tuple[Shape, ...] = ()


def validate_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Return landmarks as ``float64 (68, 2)``; raise ``ValueError`` with a clear message otherwise."""
    array = np.asarray(landmarks, dtype=np.float64)
    if array.shape != (N_LANDMARKS, 2):
        raise ValueError(f"Expected iBUG-68 landmarks of shape (68, 2), got {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError("Landmarks contain NaN or infinite coordinates.")
    iod = np.linalg.norm(array[42:48].mean(axis=0) - array[36:42].mean(axis=0))
    if iod < 1.0:
        raise ValueError("Landmarks are degenerate: the two eye centres coincide.")
    return array


class SideFrame:
    """Face frame of one side (``"left"`` = patient's left = image right, or ``"right"``)."""

    def __init__(self, landmarks: np.ndarray, side: str) -> None:
        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {side!r}.")
        self.landmarks = landmarks
        self.side = side
        image_left_eye = landmarks[36:42].mean(axis=0)
        image_right_eye = landmarks[42:48].mean(axis=0)
        axis = image_right_eye - image_left_eye
        self.iod = float(np.linalg.norm(axis))
        x_axis = axis / self.iod
        self.up = np.array([x_axis[1], -x_axis[0]])  # image y grows downwards
        self.out = x_axis if side == "left" else -x_axis
        self.origin = landmarks[27]

    def uv(self, index: int) -> np.ndarray:
        """Frame coordinates of landmark ``index`` (mirrored for the right side)."""
        point = self.landmarks[IBUG_MIRROR[index] if self.side == "right" else index]
        relative = (point - self.origin) / self.iod
        return np.array([float(relative @ self.out), float(relative @ self.up)])

    def image(self, uv: np.ndarray) -> np.ndarray:
        """Image coordinates of frame points ``(..., 2)``."""
        uv = np.asarray(uv, dtype=np.float64)
        return self.origin + (uv[..., :1] * self.out + uv[..., 1:2] * self.up) * self.iod

    def at(self, index: int, du: float = 0.0, dv: float = 0.0) -> np.ndarray:
        """Landmark ``index`` moved ``du`` outwards and ``dv`` up, in frame coordinates."""
        return self.uv(index) + np.array([du, dv])


def _curve_between(curve: np.ndarray, v_low: float, v_high: float) -> np.ndarray:
    """The part of a curve rising in ``v`` between two heights, with the ends interpolated."""
    v_values = curve[:, 1]
    ascending = np.maximum.accumulate(v_values)  # guard against tiny non-monotone wiggles

    def point_at(height: float) -> np.ndarray:
        u = np.interp(height, ascending, curve[:, 0])
        return np.array([u, height])

    inner = [p for p, v in zip(curve, ascending, strict=True) if v_low < v < v_high]
    return np.array([point_at(v_low), *inner, point_at(v_high)])


class _Side:
    """The named vertices of one side, shared by adjacent zones."""

    def __init__(self, frame: SideFrame) -> None:
        f = self.f = frame
        brow_top = max(f.uv(i)[1] for i in range(17, 27))
        self.contour = np.array(
            [f.uv(i) for i in range(8, 17)]
            + [f.at(16, -0.04, 0.35), f.at(16, -0.13, 0.75), f.at(16, -0.28, brow_top - f.uv(16)[1] + 0.6)]
        )
        self.contour[0, 0] = 0.0  # the chin point closes on the midline
        self.inner = self._inset(self.contour, INSET)
        self.canthus = f.at(45, 0.08, 0.0)
        self.lid_inner = f.at(42, 0.0, -0.04)
        self.lid_a = f.at(47, 0.0, -0.04)
        self.lid_b = f.at(46, 0.0, -0.04)
        self.pupil_low = (self.lid_a + self.lid_b) / 2
        depth = 0.28
        self.infra_inner = self.lid_inner + np.array([-0.03, -depth])
        self.infra_mid = self.pupil_low + np.array([0.0, -depth])
        self.infra_outer = self.canthus + np.array([0.06, -depth])
        self.nose_side = f.at(28, 0.12)
        self.nose_mid = f.at(29, 0.15)
        self.ala = f.at(35, 0.10, 0.05)
        self.nlf_top = f.at(35, 0.13, 0.02)
        self.nlf_bottom = f.at(54, 0.12, -0.10)
        self.nlf_mid = (self.nlf_top + self.nlf_bottom) / 2 + np.array([0.04, 0.0])
        self.v_tip = f.uv(33)[1]
        self.v_canthus = self.canthus[1]
        self.cheek_low_mid = np.array([self.pupil_low[0], self.v_tip])
        self.v_submalar_bottom = f.uv(54)[1] - 0.15
        self.v_temple_top = f.uv(26)[1] + 0.45
        self.v_jaw_angle = f.uv(13)[1]
        self.v_jaw_front = f.uv(10)[1]

    @staticmethod
    def _inset(curve: np.ndarray, distance: float) -> np.ndarray:
        """Move each vertex ``distance`` along the inward normal (towards smaller ``u``)."""
        tangents = np.gradient(curve, axis=0)
        normals = np.stack([-tangents[:, 1], tangents[:, 0]], axis=1)
        normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
        normals[normals[:, 0] > 0] *= -1
        inset = curve + normals * distance
        inset[:, 0] = np.maximum(inset[:, 0], 0.0)
        return inset

    def contour_between(self, v_low: float, v_high: float) -> np.ndarray:
        return _curve_between(self.contour, v_low, v_high)

    def inner_between(self, v_low: float, v_high: float) -> np.ndarray:
        return _curve_between(self.inner, v_low, v_high)

    def inner_at(self, v: float) -> np.ndarray:
        return np.array([np.interp(v, np.maximum.accumulate(self.inner[:, 1]), self.inner[:, 0]), v])

    def brow(self, dv: float) -> list[np.ndarray]:
        return [self.f.at(i, 0.0, dv) for i in range(22, 27)]


def _polygon(frame: SideFrame, points: list[np.ndarray] | np.ndarray) -> Polygon:
    return Polygon(frame.image(np.array(points)))


def _left_zone(code: str, s: _Side, mouth: Polygon, upa: Polygon) -> ZoneShapes:
    f = s.f
    if code == "TA":
        lateral = s.contour_between(s.v_canthus, s.v_temple_top)[::-1]
        points = [
            s.canthus,
            f.at(26, 0.0, -0.08),
            f.at(26, 0.0, 0.08),
            f.at(26, 0.0, 0.45),
            *lateral,
            s.inner_at(s.v_canthus),
        ]
        return ZoneShapes((_polygon(f, points),))
    if code == "PA":
        outer = s.contour_between(s.v_jaw_angle, s.v_canthus)
        inner = s.inner_between(s.v_jaw_angle, s.v_canthus)
        return ZoneShapes((_polygon(f, np.vstack([outer, inner[::-1]])),))
    if code == "JA":
        outer = s.contour_between(s.v_jaw_front, s.v_jaw_angle)
        inner = s.inner_between(s.v_jaw_front, s.v_jaw_angle)
        return ZoneShapes((_polygon(f, np.vstack([outer, inner[::-1]])),))
    if code == "OC":
        centre = f.image(f.at(54, 0.05, -0.07))
        return ZoneShapes((Disc(centre, 0.16 * f.iod),), (mouth, upa))
    if code == "NF":
        return ZoneShapes(
            (Band(f.image(np.array([s.nlf_top, s.nlf_mid, s.nlf_bottom])), 0.07 * f.iod),), (mouth,)
        )
    if code == "SA":
        lateral = s.inner_between(s.v_submalar_bottom, s.v_tip)[::-1]
        return ZoneShapes((_polygon(f, [s.cheek_low_mid, *lateral, s.nlf_bottom, s.nlf_mid]),))
    if code == "ZA":
        lateral = s.inner_between(s.v_tip, s.v_canthus)[::-1]
        return ZoneShapes((_polygon(f, [s.infra_mid, s.infra_outer, s.canthus, *lateral, s.cheek_low_mid]),))
    if code == "AA":
        return ZoneShapes(
            (
                _polygon(
                    f,
                    [
                        s.nose_side,
                        s.infra_inner,
                        s.infra_mid,
                        s.cheek_low_mid,
                        s.nlf_mid,
                        s.nlf_top,
                        s.ala,
                        s.nose_mid,
                    ],
                ),
            )
        )
    if code == "LI":
        return ZoneShapes((_polygon(f, [s.pupil_low, s.lid_b, s.canthus, s.infra_outer, s.infra_mid]),))
    if code == "MI":
        return ZoneShapes(
            (_polygon(f, [s.lid_inner, s.lid_a, s.pupil_low, s.infra_mid, s.infra_inner, s.nose_side]),)
        )
    if code == "UL":
        lid = [f.at(42, -0.02), f.uv(43), f.uv(44), f.uv(45), s.canthus]
        return ZoneShapes((_polygon(f, lid + s.brow(-0.08)[::-1]),))
    if code == "BA":
        return ZoneShapes((_polygon(f, s.brow(0.08) + s.brow(-0.08)[::-1]),))
    raise KeyError(code)


class FaceGeometry:
    """All zone and face-part shapes of one face."""

    def __init__(self, landmarks: np.ndarray) -> None:
        self.landmarks = validate_landmarks(landmarks)
        self.left_frame = SideFrame(self.landmarks, "left")
        self.right_frame = SideFrame(self.landmarks, "right")
        self.sides = {"left": _Side(self.left_frame), "right": _Side(self.right_frame)}
        self.iod = self.left_frame.iod

    # ----- face parts ---------------------------------------------------------------------------
    def face_outline(self) -> Polygon:
        """Jaw contour, the contour extrapolated up the temples, and a forehead dome."""
        left, right = self.sides["left"], self.sides["right"]
        brow_top = max(self.left_frame.uv(i)[1] for i in range(17, 27))
        top = brow_top + FOREHEAD_HEIGHT
        left_points = self.left_frame.image(left.contour)
        right_points = self.right_frame.image(right.contour)
        upper_u = left.contour[-1, 0]
        dome = [
            self.left_frame.image(np.array([upper_u * np.cos(t), top - 0.3 + 0.3 * np.sin(t)]))
            for t in np.linspace(0.25, np.pi / 2, 6)
        ]
        dome_right = [
            self.right_frame.image(np.array([upper_u * np.cos(t), top - 0.3 + 0.3 * np.sin(t)]))
            for t in np.linspace(np.pi / 2, 0.25, 6)[1:]
        ]
        return Polygon(np.vstack([left_points, *dome, *dome_right, right_points[::-1]]))

    def eyes(self) -> tuple[Polygon, Polygon]:
        return Polygon(self.landmarks[36:42]), Polygon(self.landmarks[42:48])

    def brows(self) -> tuple[Polygon, Polygon]:
        return tuple(  # type: ignore[return-value]
            _polygon(s.f, s.brow(0.06) + s.brow(-0.04)[::-1]) for s in self.sides.values()
        )

    def nose(self) -> Polygon:
        lf, rf = self.left_frame, self.right_frame
        left = [lf.image(lf.at(27, 0.09)), lf.image(lf.at(29, 0.13)), lf.image(lf.at(35, 0.09, 0.05))]
        right = [rf.image(rf.at(35, 0.09, 0.05)), rf.image(rf.at(29, 0.13)), rf.image(rf.at(27, 0.09))]
        return Polygon(np.array([*left, *self.landmarks[[35, 34, 33, 32, 31]], *right]))

    def mouth(self) -> Polygon:
        return Polygon(self.landmarks[48:60])

    # ----- zones --------------------------------------------------------------------------------
    def upper_perioral(self) -> Polygon:
        lf, rf = self.left_frame, self.right_frame
        ls, rs = self.sides["left"], self.sides["right"]
        points = [
            *self.landmarks[48:55],
            lf.image(ls.nlf_mid),
            lf.image(ls.nlf_top),
            lf.image(ls.ala),
            *self.landmarks[[35, 34, 33, 32, 31]],
            rf.image(rs.ala),
            rf.image(rs.nlf_top),
            rf.image(rs.nlf_mid),
        ]
        return Polygon(np.array(points))

    def zone_shapes(self) -> dict[str, ZoneShapes]:
        """Shapes of all 33 zones keyed by abbreviation, in atlas order."""
        lm = self.landmarks
        lf = self.left_frame
        mouth, nose = self.mouth(), self.nose()
        eyes = self.eyes()
        upa = self.upper_perioral()
        brow_line = {i: lm[i] for i in range(17, 27)}

        def up(point: np.ndarray, distance: float) -> np.ndarray:
            return point + lf.up * distance * self.iod

        lip_bottom_v = lf.uv(57)[1]
        lms_bottom_v = lip_bottom_v - 0.4 * (lip_bottom_v - lf.uv(8)[1])
        rf = self.right_frame
        # Below the lower-lip points 55 (image right) and 59 (image left).
        lms_left = lf.image(np.array([lf.uv(55)[0], lms_bottom_v]))
        lms_right = rf.image(np.array([rf.uv(55)[0], lms_bottom_v]))
        midline = {
            "FFA": ZoneShapes(
                (
                    Polygon(
                        np.array(
                            [up(brow_line[i], 0.08) for i in (19, 20, 21, 22, 23, 24)]
                            + [
                                up(brow_line[24], FOREHEAD_HEIGHT - 0.05),
                                up((brow_line[21] + brow_line[22]) / 2, FOREHEAD_HEIGHT),
                                up(brow_line[19], FOREHEAD_HEIGHT - 0.05),
                            ]
                        )
                    ),
                )
            ),
            "CGA": ZoneShapes(
                (
                    Polygon(
                        np.array(
                            [
                                up(lm[21], 0.30),
                                up(lm[22], 0.30),
                                up(lm[22], -0.08),
                                lf.image(lf.at(27, 0.10)),
                                rf.image(rf.at(27, 0.10)),
                                up(lm[21], -0.08),
                            ]
                        )
                    ),
                ),
                (nose,),
            ),
            "NBA": ZoneShapes(
                (
                    Polygon(
                        np.array(
                            [
                                lf.image(lf.at(27, 0.08)),
                                lf.image(lf.at(30, 0.12)),
                                up(lm[30], -0.03),
                                rf.image(rf.at(30, 0.12)),
                                rf.image(rf.at(27, 0.08)),
                            ]
                        )
                    ),
                )
            ),
            "FPA": ZoneShapes((Band(np.vstack([lm[48:60], lm[48:49]]), 0.12 * self.iod),), (mouth,)),
            "FUL": ZoneShapes((Polygon(np.vstack([lm[48:55], lm[[64, 63, 62, 61, 60]]])),)),
            "FLW": ZoneShapes(
                (Polygon(np.vstack([lm[[54, 55, 56, 57, 58, 59, 48]], lm[[60, 67, 66, 65, 64]]])),)
            ),
            "LMS": ZoneShapes((Polygon(np.vstack([lm[55:60], [lms_right, lms_left]])),), (mouth,)),
            "FCS": ZoneShapes((Polygon(np.vstack([[lms_left, lms_right], lm[[6, 7, 8, 9, 10]]])),)),
            "UPA": ZoneShapes((upa,), (mouth, nose)),
        }
        shapes: dict[str, ZoneShapes] = {}
        for code in ZONE_ABBREVIATIONS:
            if code in midline:
                base = midline[code]
            else:
                side = self.sides["left" if code[0] == "L" else "right"]
                base = _left_zone(code[1:], side, mouth, upa)
            # Every zone lies on skin: never inside the eyes; only lip zones and the nasal bridge
            # may cover the lips and the nose.
            exclude = list(base.exclude) + list(eyes)
            if code not in ("FUL", "FLW"):
                exclude.append(mouth)
            if code != "NBA":
                exclude.append(nose)
            shapes[code] = ZoneShapes(base.include, tuple(exclude))
        return shapes
