"""Dense face mesh: MediaPipe FaceMesh (468 3-D points) as a landmark model, and BlazeFace as a detector.

:class:`FaceMeshLandmarker` crops the face found by any detector into FaceMesh's 192×192 input the way
MediaPipe does — a square, rotated so the eyes are level, 1.5 times the face's extent — runs the network,
then crops again from its own landmarks (MediaPipe's tracking ROI) and runs it a second time. The 468
points come back in image pixels with their depth; the iBUG-68 points are linear combinations of mesh
vertices (:class:`MeshTo68`), fitted on human 300-W labels (see ``ml/weights/mediapipe/MODEL_CARD.md``).

:class:`BlazeFaceDetector` is MediaPipe's short-range ("front camera") detector: it sees the whole
image at 128×128, so it suits photos in which the face fills a good part of the frame (clinical
portraits, selfies) and misses small faces; use YuNet for group photos.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.config import weights_dir
from ml.core.detection import DEFAULT_FACE_DETECTOR, FaceDetection, FaceDetector, resize_image
from ml.core.face_crop import Roi, detection_angle, extract_crop, eye_angle, roi_around, to_image
from ml.core.landmarks import FaceLandmarks, LandmarkModel, ModelFileMissingError, detection_frame
from ml.model_names import BLAZEFACE, MEDIAPIPE_FACEMESH

FACEMESH_68 = MEDIAPIPE_FACEMESH
MESH_POINTS = 468

# MediaPipe's ROI: a square 1.5 times the landmarks' extent, rotated by the line through the outer eye
# corners (mesh vertices 33 and 263).
ROI_SCALE = 1.5
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
# Extent (larger side) of the 468 points in the eye-aligned frame over the eye-to-mouth distance of a
# detector's points: the first crop's size before the mesh has been seen (median on landmarks300w).
MESH_EXTENT_PER_EYE_MOUTH = 2.46
# Mesh centre (bounding-box centre in the eye-aligned frame) below the eye–mouth midpoint, in units of
# the eye-to-mouth distance.
MESH_CENTRE_BELOW_FRAME = -0.05


def mediapipe_weights_dir() -> Path:
    return weights_dir() / "mediapipe"


def _torch_threads() -> None:
    from ml.config import apply_torch_threads

    apply_torch_threads()


def roi_from_points(points: np.ndarray, angle: float, scale: float = ROI_SCALE) -> Roi:
    """MediaPipe's landmarks-to-ROI rule: extent of ``points`` in the frame rotated by ``angle``."""
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.array([[cos, sin], [-sin, cos]])
    rotated = np.asarray(points, dtype=np.float64)[:, :2] @ rotation.T
    low, high = rotated.min(axis=0), rotated.max(axis=0)
    centre = rotation.T @ ((low + high) / 2.0)
    return Roi(centre=(float(centre[0]), float(centre[1])), side=float(scale * max(high - low)), angle=angle)


def roi_from_detection(detection: FaceDetection) -> Roi:
    """The first crop of a face from a detection: level eyes, side from the eye-to-mouth distance."""
    centre, eye_mouth = detection_frame(detection)
    side = ROI_SCALE * MESH_EXTENT_PER_EYE_MOUTH
    return roi_around(centre, eye_mouth, detection_angle(detection), side, MESH_CENTRE_BELOW_FRAME)


class MeshTo68:
    """iBUG-68 points as fixed linear combinations of FaceMesh vertices (weights of each point sum to 1).

    ``indices``/``weights`` are ``(68, K)``. A combination with weights summing to one commutes with any
    similarity transform of the image, so the mapping needs no normalisation at run time.
    """

    def __init__(self, indices: np.ndarray, weights: np.ndarray, source: str = "") -> None:
        self.indices = np.asarray(indices, dtype=np.int64)
        self.weights = np.asarray(weights, dtype=np.float64)
        if self.indices.shape != self.weights.shape or self.indices.shape[0] != 68:
            raise ValueError(
                f"A 68-point mapping needs (68, K) indices and weights, got {self.indices.shape}."
            )
        if not np.allclose(self.weights.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError("The weights of every iBUG point must sum to 1.")
        self.source = source

    def __call__(self, mesh: np.ndarray) -> np.ndarray:
        points = np.asarray(mesh, dtype=np.float64)[:, :2]
        return np.einsum("ik,ikd->id", self.weights, points[self.indices])

    @classmethod
    def nearest_vertex(cls) -> MeshTo68:
        """One vertex per iBUG point (:data:`IBUG68_NEAREST_VERTEX`), the usual hand-made correspondence."""
        indices = np.asarray(IBUG68_NEAREST_VERTEX, dtype=np.int64)[:, None]
        return cls(indices, np.ones_like(indices, dtype=np.float64), source="nearest vertex")

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "indices": self.indices.tolist(),
            "weights": [[round(float(value), 6) for value in row] for row in self.weights],
        }

    @classmethod
    def from_file(cls, path: Path) -> MeshTo68:
        data = json.loads(Path(path).read_text())
        return cls(np.asarray(data["indices"]), np.asarray(data["weights"]), source=data.get("source", ""))


# Hand-made correspondence of iBUG-68 points to FaceMesh vertices (jaw 0–16, brows 17–26 on their upper
# edge, nose 27–35, eyes 36–47, lips 48–67), the common starting point of 468→68 conversions.
IBUG68_NEAREST_VERTEX: tuple[int, ...] = (
    *(162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389),
    *(71, 63, 105, 66, 107, 336, 296, 334, 293, 301),
    *(168, 197, 5, 4, 75, 97, 2, 326, 305),
    *(33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380),
    *(61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181),
    *(78, 82, 13, 312, 308, 317, 14, 87),
)

MAPPING_FILE = "mesh68_mapping.json"
# Chosen on the landmarks300w val split: 0.0482 at 12 vertices and ridge 0.1, 0.0490 at ridge 1; 32 vertices
# gain 0.0006 more (python -m ml landmarks fit-mesh-mapping; see the mediapipe model card).
MAPPING_NEIGHBOURS = 12
MAPPING_RIDGE = 0.3


def fit_mesh_to_68(
    meshes: list[np.ndarray], truths: list[np.ndarray], neighbours: int = 12, ridge: float = 1.0
) -> MeshTo68:
    """Least-squares weights (summing to 1) of the ``neighbours`` vertices nearest each iBUG point.

    Each face's mesh and human points are normalised by its outer-eye-corner distance and centred, so the
    squared error minimised is the NME's. The ridge term pulls towards the nearest-vertex mapping
    (``ridge`` is in units of faces).
    """
    from ml.core.alignment import apply_transform, similarity_transform

    normalised_meshes, normalised_truths = [], []
    reference = None
    for mesh, truth in zip(meshes, truths, strict=True):
        points, target = np.asarray(mesh, dtype=np.float64)[:, :2], np.asarray(truth, dtype=np.float64)
        centre = target.mean(axis=0)
        distance = np.linalg.norm(target[36] - target[45])
        normalised_meshes.append((points - centre) / distance)
        normalised_truths.append((target - centre) / distance)
        if reference is None:
            reference = normalised_meshes[-1]
    # Neighbours are searched in the mean mesh after aligning every face to the first (similarity).
    aligned = []
    for points in normalised_meshes:
        matrix = similarity_transform(points, reference)
        aligned.append(apply_transform(matrix, points))
    mean_mesh = np.mean(aligned, axis=0)
    mean_truth = np.mean(
        [
            apply_transform(similarity_transform(points, reference), target)
            for points, target in zip(normalised_meshes, normalised_truths, strict=True)
        ],
        axis=0,
    )
    stacked = np.stack(normalised_meshes)  # (F, 468, 2)
    targets = np.stack(normalised_truths)  # (F, 68, 2)
    indices = np.zeros((68, neighbours), dtype=np.int64)
    weights = np.zeros((68, neighbours))
    for point in range(68):
        nearest = np.argsort(np.linalg.norm(mean_mesh - mean_truth[point], axis=1))[:neighbours]
        anchor = IBUG68_NEAREST_VERTEX[point]
        if anchor not in nearest:
            nearest[-1] = anchor
        prior = (nearest == anchor).astype(np.float64)
        design = stacked[:, nearest, :].transpose(0, 2, 1).reshape(-1, neighbours)  # (2F, K)
        target = targets[:, point, :].reshape(-1)
        # minimise |A w − b|² + ridge |w − prior|²  subject to 1ᵀw = 1 (KKT system)
        gram = design.T @ design + ridge * np.eye(neighbours)
        rhs = design.T @ target + ridge * prior
        kkt = np.block([[2 * gram, np.ones((neighbours, 1))], [np.ones((1, neighbours)), np.zeros((1, 1))]])
        solution = np.linalg.solve(kkt, np.concatenate([2 * rhs, [1.0]]))
        indices[point], weights[point] = nearest, solution[:neighbours]
    return MeshTo68(
        indices,
        weights,
        source=(
            f"least squares (weights sum to 1, ridge {ridge} towards the nearest vertex) over the "
            f"{neighbours} "
            f"vertices nearest each point, on {len(meshes)} faces"
        ),
    )


def training_meshes(
    data_root: Path, face_detector: str = DEFAULT_FACE_DETECTOR, progress: Any = None
) -> tuple[list[np.ndarray], list[np.ndarray], list[tuple[int, ...]]]:
    """FaceMesh surfaces of the landmarks300w ``train`` faces the detector finds, with their human points.

    Meshes are made by the run-time pipeline (detector, two FaceMesh passes); returns meshes, human
    ``(68, 2)`` points and image shapes.
    """
    from ml.core.imageio import load_image
    from ml.core.metrics import box_iou
    from ml.landmarks.human_sets import read_human_set
    from ml.registry import registry

    detector = registry.load(face_detector)
    landmarker = FaceMeshLandmarker(mapping=MeshTo68.nearest_vertex(), face_detector=detector)
    meshes, truths, shapes = [], [], []
    faces = read_human_set(data_root / "landmarks300w", "train")
    for index, face in enumerate(faces):
        image = load_image(face.image)
        truth_box = (*face.points.min(axis=0), *face.points.max(axis=0))
        found = max(detector.detect(image), key=lambda item: box_iou(item.box, truth_box), default=None)
        if found is not None and box_iou(found.box, truth_box) >= 0.3:
            meshes.append(landmarker.mesh(image, found)[0])
            truths.append(face.points)
            shapes.append(image.shape)
        if progress is not None:
            progress(index + 1, len(faces))
    return meshes, truths, shapes


GEOMETRY_FILE = "mesh_geometry.json"
# Adult mean outer-canthal (exocanthion) width, which sets the unit of the reference surfaces: centimetres.
OUTER_CANTHAL_WIDTH_CM = 9.0


def _rigid_fit(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale, rotation and translation minimising ``|s R source + t − target|²`` (Umeyama 1991, in 3-D)."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    a, b = source - source_mean, target - target_mean
    u, singular, vt = np.linalg.svd(b.T @ a)
    sign = np.eye(3)
    sign[2, 2] = np.sign(np.linalg.det(u @ vt))
    rotation = u @ sign @ vt
    scale = float((singular * np.diag(sign)).sum() / (a**2).sum())
    return scale, rotation, target_mean - scale * rotation @ source_mean


@dataclass(frozen=True, eq=False)
class MeshGeometry:
    """The symmetric mean FaceMesh surface (centimetres, frontal, pitch 0) and FaceMesh's depth gain.

    ``depth_gain`` multiplies FaceMesh's ``z`` before a rigid fit: the network's depth is compressed
    relative to its image-plane coordinates (fitted on human 300-W labels, see :func:`fit_face_geometry`).
    ``mirror[i]`` is the vertex that mirrors vertex ``i``.
    """

    reference: np.ndarray
    depth_gain: float
    mirror: np.ndarray
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "depth_gain": round(self.depth_gain, 4),
            "reference_cm": [[round(float(value), 4) for value in row] for row in self.reference],
            "mirror": [int(value) for value in self.mirror],
        }

    @classmethod
    def from_file(cls, path: Path) -> MeshGeometry:
        data = json.loads(Path(path).read_text())
        return cls(
            np.asarray(data["reference_cm"], dtype=np.float64),
            float(data["depth_gain"]),
            np.asarray(data["mirror"], dtype=np.int64),
            data.get("source", ""),
        )


def pose_from_mesh(mesh: np.ndarray, geometry: MeshGeometry) -> Any:
    """Head pose of a FaceMesh surface (image pixels, depth in pixels) by rigid 3-D alignment.

    The reference surface is rotated onto the observed one (depth scaled by ``depth_gain``) by the
    least-squares similarity of Umeyama (1991); the rotation is decomposed as in :mod:`ml.core.pose`.
    """
    from ml.core.pose import pose_from_rotation

    observed = np.asarray(mesh, dtype=np.float64) * np.array([1.0, 1.0, geometry.depth_gain])
    _, rotation, _ = _rigid_fit(geometry.reference, observed)
    return pose_from_rotation(rotation)


_GEOMETRY: MeshGeometry | None = None


def mesh_geometry() -> MeshGeometry:
    """The shipped mesh reference and depth gain (read once per process)."""
    global _GEOMETRY
    if _GEOMETRY is None:
        path = mediapipe_weights_dir() / GEOMETRY_FILE
        if not path.is_file():
            raise ModelFileMissingError(
                f"{path} is absent: rebuild it with 'python -m ml landmarks fit-mesh-geometry'."
            )
        _GEOMETRY = MeshGeometry.from_file(path)
    return _GEOMETRY


def head_pose(face: FaceLandmarks, image_shape: tuple[int, ...]) -> tuple[Any, str]:
    """The pose of a face and how it was measured: ``"mesh"`` (3-D alignment) or ``"68-point"`` (PnP).

    A dense mesh carries depth and 468 points, and measured yaw on FASSEG better than 68 points do (see
    docs/reports/head-pose-fasseg.md), so it is used whenever the landmark model gives one.
    """
    from ml.core.pose import estimate_head_pose

    if face.mesh is not None and face.mesh.shape == (MESH_POINTS, 3):
        return pose_from_mesh(face.mesh, mesh_geometry()), "mesh"
    return estimate_head_pose(face.landmarks, image_shape), "68-point"


def mean_symmetric_surface(meshes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes mean of the meshes, made mirror-symmetric about x = 0 and levelled.

    Returns the surface in centimetres (outer eye corners 33–263 :data:`OUTER_CANTHAL_WIDTH_CM` apart,
    eye and mouth corners in one fronto-parallel plane) and the mirror index of every vertex.
    """
    from scipy.spatial import cKDTree

    flip = np.array([-1.0, 1.0, 1.0])
    surfaces = [np.asarray(mesh, dtype=np.float64) for mesh in meshes]
    mean = surfaces[0] - surfaces[0].mean(axis=0)
    for _ in range(5):
        aligned = []
        for surface in surfaces:
            scale, rotation, shift = _rigid_fit(surface, mean)
            aligned.append(surface @ (scale * rotation).T + shift)
        mean = np.mean(aligned, axis=0)
        mean -= mean.mean(axis=0)
        mean /= np.sqrt((mean**2).sum(axis=1).mean())
    for _ in range(5):  # rotate onto its own mirror image until the mirror plane is x = 0
        _, mirror = cKDTree(mean).query(mean * flip)
        symmetric = (mean + mean[mirror] * flip) / 2.0
        scale, rotation, shift = _rigid_fit(mean, symmetric)
        mean = mean @ (scale * rotation).T + shift
    _, mirror = cKDTree(mean).query(mean * flip)
    mean = (mean + mean[mirror] * flip) / 2.0
    eyes = (mean[RIGHT_EYE_OUTER] + mean[LEFT_EYE_OUTER]) / 2.0
    mouth = (mean[61] + mean[291]) / 2.0
    angle = np.arctan2(mouth[2] - eyes[2], mouth[1] - eyes[1])
    level = np.array([[1, 0, 0], [0, np.cos(angle), np.sin(angle)], [0, -np.sin(angle), np.cos(angle)]])
    mean = mean @ level.T
    mean *= OUTER_CANTHAL_WIDTH_CM / np.linalg.norm(mean[RIGHT_EYE_OUTER] - mean[LEFT_EYE_OUTER])
    return mean - mean.mean(axis=0), np.asarray(mirror, dtype=np.int64)


def fit_face_geometry(
    meshes: list[np.ndarray],
    truths: list[np.ndarray],
    image_shapes: list[tuple[int, ...]],
    mapping: MeshTo68,
) -> tuple[MeshGeometry, np.ndarray, dict[str, Any]]:
    """The mesh reference, FaceMesh's depth gain and the 68-point 3-D face model, from human labels.

    1. Reference surface: :func:`mean_symmetric_surface` of the meshes.
    2. 68-point model: the mapping applied to the reference in 3-D, mirrored and averaged, its depth
       scaled by the factor (0.5–1.5) with the least mean reprojection error of the human labels under
       :func:`ml.core.pose.estimate_head_pose` (depth is what yaw and pitch estimates hinge on).
    3. Depth gain: the factor (1.0–2.5) for FaceMesh's ``z`` at which the mesh yaw (rigid fit) against the
       human-label yaw (PnP with that model) has a regression slope of 1, over faces with |yaw| ≤ 50°.
    """
    from ml.core.pose import POSE_LANDMARK_INDICES, estimate_head_pose, rotation_from_pose
    from ml.landmarks.formats import IBUG68_FLIP_IDX

    reference, mirror = mean_symmetric_surface(meshes)
    model = np.einsum("ik,ikd->id", mapping.weights, reference[mapping.indices])
    model = (model + model[list(IBUG68_FLIP_IDX)] * np.array([-1.0, 1.0, 1.0])) / 2.0
    used = list(POSE_LANDMARK_INDICES)

    def reprojection_error(candidate: np.ndarray, truth: np.ndarray, shape: tuple[int, ...]) -> float:
        """RMS distance (in outer-eye-corner units) of the posed model's orthographic view to the labels."""
        pose = estimate_head_pose(truth, shape, model=candidate)
        projected = (candidate[used] @ rotation_from_pose(pose.yaw, pose.pitch, pose.roll).T)[:, :2]
        projected = projected - projected.mean(axis=0)
        observed = truth[used] - truth[used].mean(axis=0)
        scale = float((projected * observed).sum() / (projected**2).sum())
        residual = np.sqrt(((scale * projected - observed) ** 2).sum(axis=1).mean())
        return float(residual / np.linalg.norm(truth[36] - truth[45]))

    depth_scales = np.round(np.arange(0.5, 1.51, 0.05), 2)
    errors = []
    for depth_scale in depth_scales:
        candidate = model * np.array([1.0, 1.0, depth_scale])
        errors.append(
            np.mean([reprojection_error(candidate, t, s) for t, s in zip(truths, image_shapes, strict=False)])
        )
    model_depth = float(depth_scales[int(np.argmin(errors))])
    model = model * np.array([1.0, 1.0, model_depth])
    model -= model.mean(axis=0)

    human_yaw = np.array(
        [estimate_head_pose(t, s, model=model).yaw for t, s in zip(truths, image_shapes, strict=False)]
    )
    usable = np.abs(human_yaw) <= 50.0
    gains = np.round(np.arange(1.0, 2.51, 0.05), 2)
    slopes = []
    for gain in gains:
        geometry = MeshGeometry(reference, float(gain), mirror)
        mesh_yaw = np.array([pose_from_mesh(mesh, geometry).yaw for mesh in meshes])
        slopes.append(float(np.polyfit(human_yaw[usable], mesh_yaw[usable], 1)[0]))
    depth_gain = float(gains[int(np.argmin(np.abs(np.asarray(slopes) - 1.0)))])
    details = {
        "faces": len(meshes),
        "model_depth_scale": model_depth,
        "model_depth_scales": depth_scales.tolist(),
        "mean_reprojection_nme": [round(float(value), 5) for value in errors],
        "depth_gain": depth_gain,
        "depth_gains": gains.tolist(),
        "yaw_slopes": [round(value, 4) for value in slopes],
        "faces_with_abs_yaw_le_50": int(usable.sum()),
    }
    geometry = MeshGeometry(
        reference,
        depth_gain,
        mirror,
        source=(
            f"mean symmetric FaceMesh surface of {len(meshes)} landmarks300w train faces; depth gain "
            f"{depth_gain} makes mesh yaw match human-label yaw (slope 1, {int(usable.sum())} faces)"
        ),
    )
    return geometry, model, details


def mesh_to_68() -> MeshTo68:
    """The shipped fitted mapping, or the nearest-vertex correspondence when it is absent."""
    path = mediapipe_weights_dir() / MAPPING_FILE
    return MeshTo68.from_file(path) if path.is_file() else MeshTo68.nearest_vertex()


class FaceMeshLandmarker(LandmarkModel):
    """FaceMesh on the face of any detection: 468 3-D points and 68 iBUG points derived from them."""

    name = FACEMESH_68
    # Presence probability below which the crop is taken not to hold a face (MediaPipe uses 0.5).
    min_presence = 0.5

    def __init__(
        self,
        weights: Path | None = None,
        mapping: MeshTo68 | None = None,
        face_detector: FaceDetector | None = None,
        refine: bool = True,
    ) -> None:
        super().__init__(face_detector)
        self.weights = (
            Path(weights) if weights is not None else mediapipe_weights_dir() / "blazeface_landmark.pth"
        )
        if not self.weights.is_file():
            raise ModelFileMissingError(f"The FaceMesh weights {self.weights} are absent.")
        self.mapping = mapping or mesh_to_68()
        self.refine = refine
        self._net: Any = None

    def _network(self) -> Any:
        with self._lock:
            if self._net is None:
                import torch

                from ml.landmarks.mediapipe_nets import FaceMeshNet

                _torch_threads()
                net = FaceMeshNet()
                net.load_state_dict(torch.load(self.weights, map_location="cpu", weights_only=True))
                self._net = _frozen(net.eval(), net.input_size)
            return self._net

    def load(self) -> FaceMeshLandmarker:
        super().load()
        self._network()
        return self

    def run_mesh(self, image: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        """468 points ``(x, y, z)`` in image pixels for the face in ``roi``, and the presence probability."""
        import torch

        from ml.landmarks.mediapipe_nets import FaceMeshNet

        net = self._network()
        size = FaceMeshNet.input_size
        crop, crop_to_image = extract_crop(image, roi, size)
        tensor = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0
        with torch.inference_mode():
            mesh, presence = net(tensor)
        points = mesh[0].numpy().astype(np.float64)
        depth = points[:, 2:] * (roi.side / size)
        return np.hstack([to_image(points, crop_to_image), depth]), float(torch.sigmoid(presence[0]))

    def mesh(self, image: np.ndarray, detection: FaceDetection) -> tuple[np.ndarray, float]:
        """The 468-point mesh of a detected face (two passes when ``refine``) and its presence score."""
        points, presence = self.run_mesh(image, roi_from_detection(detection))
        if self.refine:
            angle = eye_angle(points[RIGHT_EYE_OUTER], points[LEFT_EYE_OUTER])
            points, presence = self.run_mesh(image, roi_from_points(points, angle))
        return points, presence

    def fit(self, image: np.ndarray, detection: FaceDetection) -> FaceLandmarks:
        points, _ = self.mesh(image, detection)
        return FaceLandmarks(
            box=detection.box,
            score=detection.score,
            landmarks=self.mapping(points),
            detector=detection.detector,
            mesh=points,
        )


def _frozen(net: Any, input_size: int) -> Any:
    """``net`` traced and frozen for inference (about a fifth faster on one CPU thread, same outputs to
    1e-4 px); the module itself where tracing is not available."""
    import warnings

    import torch

    try:
        with torch.inference_mode(), warnings.catch_warnings():
            # TorchScript is deprecated in favour of torch.compile, which needs a compiler at run time.
            warnings.simplefilter("ignore", DeprecationWarning)
            example = torch.zeros(1, 3, input_size, input_size)
            return torch.jit.optimize_for_inference(torch.jit.trace(net, example))
    except Exception:  # noqa: BLE001 - an untraceable build still runs, only slower
        return net


def roi_from_landmarks68(landmarks: np.ndarray) -> Roi:
    """FaceMesh's crop for a face whose 68 landmarks are known: the detector rule on their face frame."""
    from ml.core.landmarks import landmarks_frame

    points = np.asarray(landmarks, dtype=np.float64)
    centre, eye_mouth = landmarks_frame(points)
    angle = eye_angle(points[36:42].mean(axis=0), points[42:48].mean(axis=0))
    return roi_around(
        centre, eye_mouth, angle, ROI_SCALE * MESH_EXTENT_PER_EYE_MOUTH, MESH_CENTRE_BELOW_FRAME
    )


class WithFaceMesh(LandmarkModel):
    """A 68-point model whose faces also carry the FaceMesh surface, for head pose and dense zones.

    FaceMesh runs once per face on the crop given by the 68 landmarks (a better ROI than a detector's,
    so one pass suffices); the 68 points are the wrapped model's own.
    """

    def __init__(self, base: LandmarkModel, mesh: FaceMeshLandmarker | None = None) -> None:
        super().__init__(base._face_detector)
        self.base = base
        self.mesh_model = mesh or FaceMeshLandmarker(face_detector=base._face_detector)
        self.name = base.name  # type: ignore[misc]

    @property
    def face_detector(self) -> FaceDetector:
        return self.base.face_detector

    def load(self) -> WithFaceMesh:
        self.base.load()
        self.mesh_model._network()
        return self

    def fit(self, image: np.ndarray, detection: FaceDetection) -> FaceLandmarks:
        from dataclasses import replace

        from ml.core.landmarks import face_working_region

        # Both models read the face's neighbourhood once, at their working scale (12-MP photos).
        region, local, origin, factor = face_working_region(image, detection)
        face = self.base.fit(region, local)
        landmarks = face.landmarks / factor + origin
        if not np.all(np.isfinite(landmarks)):
            return replace(face, box=detection.box, landmarks=landmarks)
        mesh, _ = self.mesh_model.run_mesh(region, roi_from_landmarks68(face.landmarks))
        mesh[:, :2] = mesh[:, :2] / factor + origin
        mesh[:, 2] /= factor
        return replace(face, box=detection.box, landmarks=landmarks, mesh=mesh)


class BlazeFaceDetector(FaceDetector):
    """MediaPipe's short-range BlazeFace on the whole image letterboxed to 128×128.

    Overlapping detections are blended (weighted by score), as the BlazeFace paper describes. Points:
    right eye, left eye, nose tip, and the mouth centre twice (BlazeFace gives no mouth corners).
    """

    name = BLAZEFACE
    confident_score = 0.75

    def __init__(self, weights: Path | None = None, min_score: float = 0.6, nms_iou: float = 0.3) -> None:
        super().__init__()
        self.weights = Path(weights) if weights is not None else mediapipe_weights_dir() / "blazeface.pth"
        self.min_score = min_score
        self.nms_iou = nms_iou
        self._net: Any = None
        self._anchors: np.ndarray | None = None

    def _network(self) -> tuple[Any, np.ndarray]:
        with self._lock:
            if self._net is None:
                import torch

                from ml.landmarks.mediapipe_nets import BlazeFaceNet

                # The anchors are fixed by the network's layout; they ship once, beside its weights.
                weights, anchors = self.weights, mediapipe_weights_dir() / "anchors_face.npy"
                for path in (weights, anchors):
                    if not path.is_file():
                        raise ModelFileMissingError(f"The BlazeFace file {path} is absent.")
                _torch_threads()
                net = BlazeFaceNet()
                net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
                self._net = net.eval()
                self._anchors = np.load(anchors).astype(np.float64)
            return self._net, self._anchors

    def load(self) -> BlazeFaceDetector:
        self._network()
        return self

    def _detect(self, image: np.ndarray) -> list[FaceDetection]:
        import torch

        net, anchors = self._network()
        size = net.input_size
        height, width = image.shape[:2]
        scale = size / max(height, width)
        small = resize_image(image, scale)
        top, left = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
        canvas = np.zeros((size, size, 3), dtype=np.uint8)
        canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
        tensor = torch.from_numpy(canvas).permute(2, 0, 1)[None].float() / 255.0
        with torch.inference_mode():
            raw_boxes, logits = net(tensor)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[0].numpy().astype(np.float64), -100, 100)))
        keep = scores >= self.min_score
        if not keep.any():
            return []
        raw, anchor, score = raw_boxes[0].numpy().astype(np.float64)[keep], anchors[keep], scores[keep]
        # Offsets are in 128-px units of the anchor cell (anchors are unit-size, centres in [0, 1]).
        decoded = raw / size * np.tile(anchor[:, 2:4], 8) + np.tile(anchor[:, 0:2], 8)
        centres, sides = decoded[:, 0:2], raw[:, 2:4] / size * anchor[:, 2:4]
        boxes = np.hstack([centres - sides / 2, centres + sides / 2])
        keypoints = decoded[:, 4:16].reshape(-1, 6, 2)
        faces = []
        for box, points, blended_score in _blend_overlapping(boxes, keypoints, score, self.nms_iou):
            pixel_box = (box * size - [left, top, left, top]) / scale
            pixel_points = (points * size - [left, top]) / scale
            five = np.stack(
                [pixel_points[0], pixel_points[1], pixel_points[2], pixel_points[3], pixel_points[3]]
            )
            faces.append(
                FaceDetection(
                    box=(
                        float(np.clip(pixel_box[0], 0, width)),
                        float(np.clip(pixel_box[1], 0, height)),
                        float(np.clip(pixel_box[2], 0, width)),
                        float(np.clip(pixel_box[3], 0, height)),
                    ),
                    score=float(blended_score),
                    detector=self.name,
                    points=five,
                )
            )
        return faces


def _iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    low = np.maximum(box[:2], boxes[:, :2])
    high = np.minimum(box[2:], boxes[:, 2:])
    intersection = np.prod(np.clip(high - low, 0, None), axis=1)
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    area = np.prod(box[2:] - box[:2])
    return intersection / np.maximum(area + areas - intersection, 1e-12)


def _blend_overlapping(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """BlazeFace's "blending" suppression: each cluster of overlapping boxes becomes their weighted mean.

    The cluster keeps its best score (as MediaPipe does).
    """
    order = np.argsort(-scores)
    remaining = order
    clusters = []
    while remaining.size:
        best = remaining[0]
        overlap = _iou_one_to_many(boxes[best], boxes[remaining]) > iou
        members = remaining[overlap]
        remaining = remaining[~overlap]
        weight = scores[members] / scores[members].sum()
        clusters.append(
            (
                (boxes[members] * weight[:, None]).sum(axis=0),
                (keypoints[members] * weight[:, None, None]).sum(axis=0),
                float(scores[best]),
            )
        )
    return clusters
