"""Semi-synthetic wrinkle images with exact ground truth.

No real wrinkle photo with ground truth is available to this project, so human wrinkle *shapes*
(binary line masks drawn on 1024² FFHQ faces, ``wrinkle-masks``) are rendered as creases onto real
faces (MEBeauty originals, FASSEG frontal). Every figure measured on these images must be labelled
semi-synthetic.

Rendering, per face and wrinkle mask:

1. Placement: the mask is mapped from its FFHQ frame onto the photo by the similarity transform that
   takes FFHQ's canonical eye and mouth centres onto the face's (from 68 landmarks), with a small
   random jitter, so forehead lines land on the forehead and crow's feet at the eye corners.
2. Region: only forehead, glabella and periorbital skin are kept — the area from the nose tip up to
   a forehead height above the brows, between the temples, without the eyes and brows, and only
   pixels whose colour is close to the face's skin (so hair and background stay clean). The region is
   feathered so creases fade out at its border.
3. Crease profile: the placed lines are thinned to a centreline; each connected line gets a width
   and a depth; the darkening is a narrow Gaussian fold plus a broad shallow shadow around the
   centreline, modulated along the line by smooth noise. Shading is multiplicative on all channels
   (weaker in red, stronger in blue, as in skin shadows; neutral on grey photos), so the pore
   texture under the crease stays; a faint highlight runs along the upper edge (light from above).
4. Ground truth: the pixels where the narrow fold alone darkens the skin by at least ``visibility``
   (default 6 %); the broad shadow is not counted as wrinkle.

The output is the forehead-and-eye crop (:mod:`ml.wrinkles.crop`) of the rendered photo.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from ml.core.alignment import similarity_transform
from ml.core.imageio import load_image
from ml.wrinkles.crop import CROP_SIZE, forehead_eye_crop

FFHQ_FRAME = 1024
# Eye and mouth centres of an aligned 1024² FFHQ face (measured on the mean of the wrinkle masks and
# FFHQ's alignment recipe); the mapping only needs to be roughly right.
FFHQ_LEFT_EYE = (383.0, 482.0)
FFHQ_RIGHT_EYE = (641.0, 482.0)
FFHQ_MOUTH = (512.0, 745.0)
LABEL = "semi-synthetic"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MIN_INTER_OCULAR_PX = 40.0


@dataclass(frozen=True)
class WrinkleShape:
    """One human wrinkle mask and where it sits in its 1024² FFHQ frame."""

    path: Path
    top: int
    left: int

    def frame_mask(self) -> np.ndarray:
        """The mask pasted into an empty 1024² frame, float32 in {0, 1}."""
        mask = load_image(self.path)[..., 0] > 127
        frame = np.zeros((FFHQ_FRAME, FFHQ_FRAME), dtype=np.float32)
        height = min(mask.shape[0], FFHQ_FRAME - self.top)
        width = min(mask.shape[1], FFHQ_FRAME - self.left)
        frame[self.top : self.top + height, self.left : self.left + width] = mask[:height, :width]
        return frame


def read_wrinkle_shapes(masks_dir: Path) -> list[WrinkleShape]:
    """Masks in ``masks_dir/masks`` (or ``masks_dir``) with offsets from ``crop_limits.csv``."""
    masks_dir = Path(masks_dir)
    image_dir = masks_dir / "masks" if (masks_dir / "masks").is_dir() else masks_dir
    limits_path = masks_dir / "crop_limits.csv"
    if not limits_path.is_file():
        limits_path = image_dir.parent / "crop_limits.csv"
    if not limits_path.is_file():
        raise FileNotFoundError(f"crop_limits.csv not found beside {image_dir}.")
    with limits_path.open(newline="") as handle:
        offsets = {
            int(row["ffhq_id"]): (int(row["min_h"]), int(row["min_w"])) for row in csv.DictReader(handle)
        }
    shapes = []
    for path in sorted(image_dir.glob("final*.png")):
        identifier = int(path.stem.removeprefix("final"))
        if identifier in offsets:
            top, left = offsets[identifier]
            shapes.append(WrinkleShape(path=path, top=top, left=left))
    if not shapes:
        raise FileNotFoundError(f"No finalNNNNN.png masks with crop limits found in {image_dir}.")
    return shapes


def find_face_images(faces_dir: Path) -> list[Path]:
    """Photos under ``faces_dir`` (recursive), skipping folders named ``masks`` and ``crops``."""
    faces_dir = Path(faces_dir)
    if not faces_dir.is_dir():
        raise FileNotFoundError(f"Face folder {faces_dir} does not exist.")
    return sorted(
        path
        for path in faces_dir.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
        and not {"masks", "crops"} & set(path.relative_to(faces_dir).parts)
    )


def _centre(landmarks: np.ndarray, indices: range) -> np.ndarray:
    return landmarks[list(indices)].mean(axis=0)


def face_anchor_points(landmarks: np.ndarray) -> np.ndarray:
    """Left eye, right eye and mouth centres (iBUG-68 36–41, 42–47, 48–67)."""
    return np.stack(
        [
            _centre(landmarks, range(36, 42)),
            _centre(landmarks, range(42, 48)),
            _centre(landmarks, range(48, 68)),
        ]
    )


def _skin_colour_mask(image: np.ndarray, landmarks: np.ndarray, inter_ocular: float) -> np.ndarray:
    """Pixels whose Lab colour is within a robust distance of skin sampled on glabella and cheeks."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    samples = []
    radius = max(2, int(0.12 * inter_ocular))
    for point in (landmarks[27], (landmarks[1] + landmarks[31]) / 2, (landmarks[15] + landmarks[35]) / 2):
        x, y = int(round(point[0])), int(round(point[1]))
        patch = lab[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
        samples.append(patch.reshape(-1, 3))
    pixels = np.concatenate(samples)
    median = np.median(pixels, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(pixels - median), axis=0), [10.0, 4.0, 4.0])
    # Lightness may vary with shading far more than chroma, so it gets a wider tolerance.
    distance = np.sqrt((((lab - median) / spread) ** 2 * [0.3, 1.0, 1.0]).sum(axis=2))
    return distance < 3.0


def placement_region(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Soft [0, 1] map of forehead, glabella and periorbital skin where creases may be rendered."""
    height, width = image.shape[:2]
    left_eye, right_eye, _ = face_anchor_points(landmarks)
    inter_ocular = float(np.linalg.norm(right_eye - left_eye))
    brow_top = float(landmarks[17:27, 1].min())
    polygon = np.array(
        [
            [landmarks[0, 0], landmarks[30, 1]],
            [landmarks[0, 0], brow_top - 0.9 * inter_ocular],
            [landmarks[16, 0], brow_top - 0.9 * inter_ocular],
            [landmarks[16, 0], landmarks[30, 1]],
        ],
        dtype=np.int32,
    )
    region = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(region, [polygon], 1)
    # Keep creases off the nose below the bridge, the eyes and the brows.
    cv2.fillPoly(region, [cv2.convexHull(landmarks[[31, 32, 33, 34, 35, 29]].astype(np.int32))], 0)
    excluded = np.zeros_like(region)
    for indices in (range(36, 42), range(42, 48), range(17, 22), range(22, 27)):
        cv2.fillPoly(excluded, [cv2.convexHull(landmarks[list(indices)].astype(np.int32))], 1)
    grow = max(1, int(0.08 * inter_ocular))
    excluded = cv2.dilate(
        excluded, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    )
    allowed = (region > 0) & (excluded == 0) & _skin_colour_mask(image, landmarks, inter_ocular)
    allowed = ndimage.binary_opening(allowed, iterations=2)
    feather = max(1.0, 0.05 * inter_ocular)
    return np.clip(cv2.GaussianBlur(allowed.astype(np.float32), (0, 0), feather) * 2.0 - 0.5, 0.0, 1.0)


def _smooth_noise(shape: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency noise in [0, 1] with features of about ``scale`` pixels."""
    noise = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), max(1.0, scale))
    spread = noise.std() or 1.0
    return np.clip(0.5 + noise / (4.0 * spread), 0.0, 1.0)


SHADOW_TINT = np.array([0.8, 1.0, 1.15], dtype=np.float32)


def shadow_tint(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Per-channel darkening factors: skin shadows lose less red than blue (they look warmer), scaled
    by how coloured the skin is so that grey photos get neutral creases."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    inside = region > 0.5
    saturation = float(np.median(hsv[..., 1][inside])) / 255.0 if inside.any() else 0.0
    return (1.0 + (SHADOW_TINT - 1.0) * min(1.0, saturation / 0.25)).astype(np.float32)


@dataclass(frozen=True)
class RenderedFace:
    """A photo with rendered creases, the fold's darkening fraction per pixel and placement details.

    ``fold_darkening`` is the narrow fold component only; the broad shadow around it is context, not
    wrinkle, and stays out of the ground truth.
    """

    image: np.ndarray
    fold_darkening: np.ndarray
    transform: np.ndarray
    inter_ocular: float


def render_creases(
    image: np.ndarray,
    landmarks: np.ndarray,
    shape_frame: np.ndarray,
    rng: np.random.Generator,
    depth_range: tuple[float, float] = (0.15, 0.40),
    width_range: tuple[float, float] = (0.006, 0.016),
) -> RenderedFace:
    """Render the wrinkle lines of a 1024² FFHQ-frame mask as creases on ``image`` (see module doc).

    ``depth_range`` is the central darkening fraction of a line, ``width_range`` its Gaussian σ as a
    fraction of the inter-ocular distance; each connected line draws its own values.
    """
    height, width = image.shape[:2]
    anchors = face_anchor_points(landmarks)
    inter_ocular = float(np.linalg.norm(anchors[1] - anchors[0]))
    if inter_ocular < MIN_INTER_OCULAR_PX:
        raise ValueError(f"The face is too small (inter-ocular distance {inter_ocular:.0f} px).")
    jitter = rng.normal(0.0, 0.03 * inter_ocular, size=(3, 2))
    canonical = np.array([FFHQ_LEFT_EYE, FFHQ_RIGHT_EYE, FFHQ_MOUTH])
    transform = similarity_transform(canonical, anchors + jitter)
    placed = cv2.warpAffine(shape_frame, transform, (width, height), flags=cv2.INTER_LINEAR)
    region = placement_region(image, landmarks)
    centreline = skeletonize((placed > 0.25) & (region > 0))
    labels, count = ndimage.label(centreline, structure=np.ones((3, 3)))
    if count == 0:
        return RenderedFace(image.copy(), np.zeros((height, width), np.float32), transform, inter_ocular)
    distance, (nearest_row, nearest_col) = ndimage.distance_transform_edt(~centreline, return_indices=True)
    owner = labels[nearest_row, nearest_col]
    sigma_per_line = rng.uniform(*width_range, size=count + 1) * inter_ocular
    depth_per_line = rng.uniform(*depth_range, size=count + 1)
    sigma = np.maximum(sigma_per_line[owner], 0.7)
    # Contrast fades in and out along a line instead of staying constant like a drawn stroke.
    along_line = _smooth_noise((height, width), 0.12 * inter_ocular, rng) ** 1.5
    strength = depth_per_line[owner] * along_line * region
    # A narrow fold plus a broad, shallow shadow of the skin curving into it.
    fold = strength * np.exp(-(distance**2) / (2 * sigma**2))
    shadow = strength * np.exp(-(distance**2) / (2 * (3 * sigma) ** 2))
    darkening = cv2.GaussianBlur((0.65 * fold + 0.35 * shadow).astype(np.float32), (0, 0), 0.6)
    # Faint highlight on the upper side of each crease (light from above), offset by a few widths.
    above = np.arange(height)[:, None] < nearest_row
    highlight = 0.12 * strength * np.exp(-((distance - 4 * sigma) ** 2) / (2 * (2 * sigma) ** 2)) * above
    shading = 1.0 - darkening[..., None] * shadow_tint(image, region)
    shading = shading + cv2.GaussianBlur(highlight.astype(np.float32), (0, 0), 0.6)[..., None]
    rendered = np.clip(image.astype(np.float32) * shading, 0, 255)
    return RenderedFace(
        np.rint(rendered).astype(np.uint8), (0.65 * fold).astype(np.float32), transform, inter_ocular
    )


@dataclass(frozen=True)
class SyntheticSample:
    """One written sample: file names and provenance for ``index.csv``."""

    name: str
    face: str
    mask: str
    placement: dict
    wrinkle_fraction: float


def synthesize_dataset(
    masks_dir: Path,
    faces_dir: Path,
    out_dir: Path,
    per_face: int = 2,
    limit: int | None = None,
    size: int = CROP_SIZE,
    visibility: float = 0.06,
    seed: int = 0,
    detect: Callable[[np.ndarray], list] | None = None,
    log: Callable[[str], None] = print,
) -> list[SyntheticSample]:
    """Write ``images/``, ``masks/``, ``regions/`` (PNG, ``size``²) and ``index.csv`` under ``out_dir``.

    ``per_face`` random wrinkle masks are rendered on each face found in ``faces_dir`` (at most
    ``limit`` faces); photos without a detectable face are skipped and reported through ``log``.
    ``detect`` defaults to :func:`ml.core.landmarks.detect_faces_with_landmarks`.
    """
    if detect is None:
        from ml.core.landmarks import detect_faces_with_landmarks

        detect = detect_faces_with_landmarks
    shapes = read_wrinkle_shapes(masks_dir)
    if not 1 <= per_face <= len(shapes):
        raise ValueError(
            f"per_face must be between 1 and the {len(shapes)} available wrinkle masks, got {per_face}."
        )
    faces = find_face_images(faces_dir)
    if not faces:
        raise FileNotFoundError(f"No face photos (*.jpg, *.png) found under {faces_dir}.")
    rng = np.random.default_rng(seed)
    faces = [faces[index] for index in rng.permutation(len(faces))]
    out_dir = Path(out_dir)
    for sub in ("images", "masks", "regions"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    samples: list[SyntheticSample] = []
    used_faces = 0
    for face_path in faces:
        if limit is not None and used_faces >= limit:
            break
        image = load_image(face_path)
        found = detect(image)
        if not found:
            log(f"skipped {face_path}: no face found")
            continue
        landmarks = np.asarray(found[0].landmarks, dtype=np.float64)
        try:
            crop = forehead_eye_crop(landmarks, size=size)
            region_crop = crop.crop_image((placement_region(image, landmarks) * 255).astype(np.uint8)) > 127
        except ValueError as error:
            log(f"skipped {face_path}: {error}")
            continue
        used_faces += 1
        for shape_index in rng.choice(len(shapes), size=per_face, replace=False):
            shape = shapes[int(shape_index)]
            try:
                rendered = render_creases(image, landmarks, shape.frame_mask(), rng)
            except ValueError as error:
                log(f"skipped {face_path}: {error}")
                break
            crop_image = crop.crop_image(rendered.image)
            crop_darkening = crop.crop_image(rendered.fold_darkening, interpolation=cv2.INTER_LINEAR)
            truth = crop_darkening >= visibility
            name = f"{len(samples):05d}"
            cv2.imwrite(str(out_dir / "images" / f"{name}.png"), cv2.cvtColor(crop_image, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(out_dir / "masks" / f"{name}.png"), truth.astype(np.uint8) * 255)
            cv2.imwrite(str(out_dir / "regions" / f"{name}.png"), region_crop.astype(np.uint8) * 255)
            placement = {
                "ffhq_to_photo": np.round(rendered.transform, 4).tolist(),
                "crop_box": [round(crop.x1, 2), round(crop.y1, 2), round(crop.x2, 2), round(crop.y2, 2)],
                "inter_ocular_px": round(rendered.inter_ocular, 1),
            }
            samples.append(
                SyntheticSample(name, str(face_path), str(shape.path), placement, float(truth.mean()))
            )
    write_index(out_dir / "index.csv", samples)
    log(f"wrote {len(samples)} {LABEL} samples from {used_faces} faces to {out_dir}")
    return samples


def write_index(path: Path, samples: Sequence[SyntheticSample]) -> None:
    """``index.csv``: name, image, mask, region, face, wrinkle mask, placement JSON, fraction, label."""
    with Path(path).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "name",
                "image",
                "mask",
                "region",
                "face",
                "wrinkle_mask",
                "placement",
                "wrinkle_fraction",
                "label",
            ]
        )
        for sample in samples:
            writer.writerow(
                [
                    sample.name,
                    f"images/{sample.name}.png",
                    f"masks/{sample.name}.png",
                    f"regions/{sample.name}.png",
                    sample.face,
                    sample.mask,
                    json.dumps(sample.placement),
                    f"{sample.wrinkle_fraction:.6f}",
                    LABEL,
                ]
            )


def read_index(data_dir: Path) -> Iterator[dict[str, str]]:
    """Rows of ``index.csv`` in a synthesized folder."""
    path = Path(data_dir) / "index.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; create the data set with `python -m ml wrinkles synthesize`."
        )
    with path.open(newline="") as handle:
        yield from csv.DictReader(handle)
