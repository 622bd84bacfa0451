"""The normal geometry of the nose and mouth given the rest of the face: a geometry-corrected normal face.

A latent normalizer adapted to the photo reproduces a displaced but intact lip (report §24: a lifted or
pushed upper lip is still a plausible face, so the normal face follows it and S hardly moves). Where the
nose–mouth landmarks of a normal face lie can be predicted from the face's other landmarks; this module
fits that prediction on normal training faces (ridge regression, with the spread of its cross-validated
residuals per landmark) and warps the normal face so that each nose–mouth landmark lies within ``limit``
standard deviations of its prediction. Landmarks within the bound stay where the face has them, so a face
of normal geometry keeps its own; S and the heatmap then see how far a landmark lies outside normal
variation, in the pixels it moved.

Every landmark here comes from one procedure, on the training faces, the held-out faces and the analysis
alike: dlib's shape predictor on the aligned crop, in the face frame of an average aligned face
(:func:`geometry_landmarks`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from ml.core.landmarks import DlibLandmarker

# iBUG-68 points whose normal position is predicted (nose tip and base, the whole mouth) and those it is
# predicted from (jaw, brows, nose bridge, eyes).
PREDICTED_POINTS: tuple[int, ...] = (*range(30, 36), *range(48, 68))
CONTEXT_POINTS: tuple[int, ...] = tuple(i for i in range(68) if i not in PREDICTED_POINTS)
RIDGE_ALPHAS: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)
CROSS_VALIDATION_FOLDS = 5
GEOMETRY_FORMAT = "facet-normal-geometry/1"


def _shape_predictor() -> DlibLandmarker:
    """The registry's dlib model (it serves it beside FaceMesh): the analysis has loaded it to find the
    face, so its shape predictor is not read a second time."""
    from ml.model_names import DLIB_68
    from ml.registry import registry

    return registry.load(DLIB_68).base


def geometry_landmarks(aligned: np.ndarray, frame_centre: np.ndarray, frame_scale: float) -> np.ndarray:
    """``(68, 2)`` landmarks of an aligned face crop (RGB uint8), predicted by dlib in the fixed face frame
    (centre, eye-to-mouth scale) of an average aligned face: the same box for every crop, so a local
    defect moves only the landmarks it moves."""
    return _shape_predictor().fit_frame(aligned, np.asarray(frame_centre, dtype=np.float64), frame_scale)


@dataclass(frozen=True)
class NormalGeometry:
    """Ridge prediction of the nose–mouth landmarks from the others, in aligned-crop pixels of ``size``."""

    size: int
    frame_centre: np.ndarray
    frame_scale: float
    alpha: float
    context_mean: np.ndarray
    coefficients: np.ndarray  # (2 · predicted, 2 · context)
    intercept: np.ndarray  # (2 · predicted,)
    covariances: np.ndarray  # (predicted, 2, 2) of the cross-validated residuals
    provenance: dict[str, Any] = field(default_factory=dict)

    def predict(self, landmarks: np.ndarray) -> np.ndarray:
        """Normal positions ``(len(PREDICTED_POINTS), 2)`` of the nose–mouth landmarks of ``landmarks``."""
        context = (
            np.asarray(landmarks, dtype=np.float64)[list(CONTEXT_POINTS)].reshape(-1) - self.context_mean
        )
        return (self.coefficients @ context + self.intercept).reshape(-1, 2)

    def bounded(self, landmarks: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
        """``landmarks`` with each nose–mouth point further than ``limit`` standard deviations (Mahalanobis,
        its residuals' covariance) from its predicted normal position moved onto that bound, and each
        predicted point's distance in standard deviations."""
        points = np.asarray(landmarks, dtype=np.float64).copy()
        predicted = self.predict(points)
        residuals = points[list(PREDICTED_POINTS)] - predicted
        inverse = np.linalg.inv(self.covariances)
        distances = np.sqrt(np.einsum("ni,nij,nj->n", residuals, inverse, residuals))
        shrink = np.minimum(1.0, limit / np.maximum(distances, 1e-9))
        points[list(PREDICTED_POINTS)] = predicted + residuals * shrink[:, None]
        return points, distances

    def to_json(self) -> dict[str, Any]:
        return {
            "format": GEOMETRY_FORMAT,
            "size": self.size,
            "frame_centre": self.frame_centre.tolist(),
            "frame_scale": self.frame_scale,
            "alpha": self.alpha,
            "context_mean": self.context_mean.tolist(),
            "coefficients": self.coefficients.tolist(),
            "intercept": self.intercept.tolist(),
            "covariances": self.covariances.tolist(),
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NormalGeometry:
        if data.get("format") != GEOMETRY_FORMAT:
            raise ValueError(f"Not a normal-geometry file (format {data.get('format')!r}).")
        return cls(
            size=int(data["size"]),
            frame_centre=np.asarray(data["frame_centre"], dtype=np.float64),
            frame_scale=float(data["frame_scale"]),
            alpha=float(data["alpha"]),
            context_mean=np.asarray(data["context_mean"], dtype=np.float64),
            coefficients=np.asarray(data["coefficients"], dtype=np.float64),
            intercept=np.asarray(data["intercept"], dtype=np.float64),
            covariances=np.asarray(data["covariances"], dtype=np.float64),
            provenance=dict(data.get("provenance") or {}),
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: Path | str) -> NormalGeometry:
        return cls.from_json(json.loads(Path(path).read_text()))


def average_face_frame(aligned_landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """Median face frame (centre, eye-to-mouth scale) of aligned faces' ``(N, 68, 2)`` landmarks."""
    from ml.core.landmarks import landmarks_frame

    frames = [landmarks_frame(points) for points in aligned_landmarks]
    return np.median([centre for centre, _ in frames], axis=0), float(np.median([s for _, s in frames]))


def fit_normal_geometry(
    landmarks: np.ndarray,
    size: int,
    frame_centre: np.ndarray,
    frame_scale: float,
    provenance: dict[str, Any] | None = None,
    seed: int = 0,
) -> NormalGeometry:
    """Fit the prediction on normal faces' ``(N, 68, 2)`` :func:`geometry_landmarks`: ridge regression
    (alpha by cross-validation), and the covariance of each predicted point's residual from
    :data:`CROSS_VALIDATION_FOLDS`-fold out-of-fold predictions (in-sample residuals understate it)."""
    from sklearn.linear_model import Ridge, RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict

    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (68, 2) or len(points) < 4 * CROSS_VALIDATION_FOLDS:
        raise ValueError(
            f"Need at least {4 * CROSS_VALIDATION_FOLDS} faces of 68 landmarks, got {points.shape}."
        )
    context = points[:, list(CONTEXT_POINTS)].reshape(len(points), -1)
    target = points[:, list(PREDICTED_POINTS)].reshape(len(points), -1)
    context_mean = context.mean(axis=0)
    folds = KFold(CROSS_VALIDATION_FOLDS, shuffle=True, random_state=seed)
    alpha = float(RidgeCV(alphas=RIDGE_ALPHAS, cv=folds).fit(context - context_mean, target).alpha_)
    out_of_fold = cross_val_predict(Ridge(alpha=alpha), context - context_mean, target, cv=folds)
    residuals = (target - out_of_fold).reshape(len(points), -1, 2)
    covariances = np.stack([np.cov(residuals[:, index].T) for index in range(residuals.shape[1])])
    ridge = Ridge(alpha=alpha).fit(context - context_mean, target)
    rms = float(np.sqrt((residuals**2).sum(axis=2).mean()))
    return NormalGeometry(
        size=size,
        frame_centre=np.asarray(frame_centre, dtype=np.float64),
        frame_scale=float(frame_scale),
        alpha=alpha,
        context_mean=context_mean,
        coefficients=ridge.coef_,
        intercept=ridge.intercept_,
        covariances=covariances,
        provenance={**(provenance or {}), "faces": len(points), "cross_validated_rms_px": round(rms, 4)},
    )


def warp_to_landmarks(image: np.ndarray, landmarks: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """``image`` warped smoothly (thin-plate spline through the 68 points and the crop's corners and edge
    midpoints, which stay) so that what lies at ``landmarks`` lies at ``moved``."""
    from scipy.interpolate import RBFInterpolator

    height, width = image.shape[:2]
    source = np.asarray(landmarks, dtype=np.float64)
    destination = np.asarray(moved, dtype=np.float64)
    if np.allclose(source, destination):
        return image
    border = np.array(
        [
            [x, y]
            for x in (0, (width - 1) / 2, width - 1)
            for y in (0, (height - 1) / 2, height - 1)
            if (x, y) != ((width - 1) / 2, (height - 1) / 2)
        ]
    )
    centres = np.concatenate([destination, border])
    # Backward map: the pixel at each destination point is read at its source point.
    offsets = np.concatenate([source - destination, np.zeros_like(border)])
    field = RBFInterpolator(centres, offsets, kernel="thin_plate_spline")
    ys, xs = np.mgrid[:height, :width].astype(np.float64)
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
    read_at = grid + field(grid)
    return cv2.remap(
        image,
        read_at[:, 0].reshape(height, width).astype(np.float32),
        read_at[:, 1].reshape(height, width).astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )


def geometry_corrected(
    normal_face: np.ndarray, aligned: np.ndarray, geometry: NormalGeometry, limit: float
) -> tuple[np.ndarray, dict[str, Any]]:
    """The normal face with its nose–mouth geometry brought within ``limit`` standard deviations of the
    normal geometry predicted for the photo's face (``aligned``: the photo's aligned crop, whose
    landmarks the normal face shares), and what was moved: the largest distance in standard deviations,
    the points moved and the largest move in pixels."""
    if aligned.shape[0] != geometry.size:
        raise ValueError(f"The normal geometry is for {geometry.size}-px crops, not {aligned.shape[0]}-px.")
    landmarks = geometry_landmarks(aligned, geometry.frame_centre, geometry.frame_scale)
    moved, distances = geometry.bounded(landmarks, limit)
    shift = np.linalg.norm(moved - landmarks, axis=1)
    corrected = warp_to_landmarks(normal_face, landmarks, moved)
    return corrected, {
        "limit_sd": limit,
        "largest_sd": round(float(distances.max()), 3),
        "points_moved": int((shift > 1e-6).sum()),
        "largest_move_px": round(float(shift.max()), 3),
    }
