"""Face preprocessing for normalization: FFHQ-style alignment and a landmark face mask.

The crop follows the FFHQ recipe (Karras et al. 2019, ``ffhq-dataset/download_ffhq.py``):
an oriented square ("quad") from the eye-to-eye and eye-to-mouth vectors, so the eyes are level
and the face fills the same part of every crop; when the quad leaves the photo (the face fills
the frame) the canvas is enlarged by mirror reflection, blurred and faded to the median colour
towards the new border, so the generator never sees a hard edge. The padding is invented content, so
:class:`AlignedFace` also says which crop pixels are the photo's own (``observed``): the normalizer and
the score can then leave the padding out. Unlike FFHQ, the blur stops at the photo's edge: FFHQ also
blurs a band inside the photo (a third of the padding's width, a tenth of the crop), which on a tightly
framed photo took face pixels out of the fit and moved S (report §18; this padding adopted in §20).

Photos rotated or cropped by another tool before upload (third-party face crops, rotated exports) carry
digital fill: black corners outside the rotated picture. :func:`digital_fill` finds it and
:class:`AlignedFace` says which crop pixels show it (``fill``), so the analysis can warn that such an edited
photo may not compare with an unedited one; the fit still uses those pixels (leaving them out cost more
than it gained, report §22).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Bilinear sampling mixes up to four canvas pixels; below this share of the photo's own value a crop
# pixel counts as padding (the tolerance only absorbs float rounding of the warp).
OBSERVED_THRESHOLD = 0.999

# Bumped whenever align_face's output changes, so caches of aligned faces are rebuilt.
ALIGNMENT_VERSION = 2

# Digital fill is black to within JPEG rounding; content is any pixel brighter than this in some channel.
FILL_LEVEL = 2
# Content specks and fill regions smaller than this share of the searched area are ignored, so a stray
# bright JPEG pixel cannot stretch the picture's outline nor a small black patch count as fill.
FILL_MIN_SHARE = 0.005


@dataclass
class AlignedFace:
    """An aligned square face, its landmarks in crop coordinates and the photo → crop affine map.

    ``observed`` ``(size, size)`` bool: True where the crop pixel is the photo's own content, False where
    it comes (even in part) from the blurred mirror padding, i.e. where the quad left the photo.
    ``fill`` ``(size, size)`` bool: True where the crop pixel shows the photo's digital fill
    (:func:`digital_fill`); such pixels still count as observed.
    """

    image: np.ndarray
    landmarks: np.ndarray
    matrix: np.ndarray
    quad: np.ndarray
    observed: np.ndarray
    fill: np.ndarray


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"landmarks must be a finite (68, 2) array in iBUG-68 order; got {points.shape}.")
    return points


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ crop square ``(4, 2)``: top-left, bottom-left, bottom-right, top-right corners."""
    points = _check_landmarks(landmarks)
    eye_left, eye_right = points[36:42].mean(0), points[42:48].mean(0)
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    mouth_avg = (points[48] + points[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    length = np.hypot(*x)
    if length == 0:
        raise ValueError("Degenerate landmarks: the eyes and mouth coincide.")
    x = x / length * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    center = eye_avg + eye_to_mouth * 0.1
    return np.stack([center - x - y, center - x + y, center + x + y, center + x - y])


def digital_fill(image: np.ndarray, photo_edges: tuple[bool, bool, bool, bool] = (True,) * 4) -> np.ndarray:
    """Boolean mask of the digital fill in ``image`` (RGB): black pixels outside the convex outline of
    the picture's content, in regions touching a side of ``image`` that is the photo's own edge
    (``photo_edges``: left, top, right, bottom).

    A rotated or letterboxed picture is convex, so its fill lies outside the content's convex hull; black
    hair or a dark backdrop inside the picture stays inside that hull and keeps counting as the photo's.
    """
    height, width = image.shape[:2]
    min_area = FILL_MIN_SHARE * height * width
    content = (image.max(axis=2) > FILL_LEVEL).astype(np.uint8)
    fill = np.zeros((height, width), dtype=bool)
    # Fill touches a photo edge: without a black pixel on one, there is none (most photos; no labelling).
    sides = (content[:, 0], content[0, :], content[:, -1], content[-1, :])
    if not any(edge and not side.all() for edge, side in zip(photo_edges, sides, strict=True)):
        return fill
    count, labels, stats, _ = cv2.connectedComponentsWithStats(content, connectivity=8)
    kept = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= min_area) + 1
    if len(kept) == 0:
        return fill
    points = cv2.findNonZero(np.isin(labels, kept).astype(np.uint8))
    picture = np.zeros((height, width), dtype=np.uint8)
    cv2.fillConvexPoly(picture, cv2.convexHull(points), 1)
    outside = ((picture == 0) & (content == 0)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(outside, connectivity=4)
    left, top, right, bottom = photo_edges
    for label in range(1, count):
        x, y, w, h, area = stats[label]
        touches = (
            (left and x == 0)
            or (top and y == 0)
            or (right and x + w == width)
            or (bottom and y + h == height)
        )
        if touches and area >= min_area:
            fill |= labels == label
    return fill


def _pad_blurred_reflection(
    image: np.ndarray, pad: tuple[int, int, int, int], quad_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """FFHQ padding: reflect, blur towards the new border and fade to the median colour.

    Returns the padded canvas and, on the same grid, the share of each pixel that is the photo's own
    value (1 inside the photo, 0 in the padding): the blur and the fade change only the padding."""
    left, top, right, bottom = pad
    padded = np.pad(image.astype(np.float32), ((top, bottom), (left, right), (0, 0)), mode="reflect")
    height, width = padded.shape[:2]
    ys, xs = np.ogrid[:height, :width]
    with np.errstate(divide="ignore", invalid="ignore"):
        horizontal = 1.0 - np.minimum(xs / max(left, 1), (width - 1 - xs) / max(right, 1))
        vertical = 1.0 - np.minimum(ys / max(top, 1), (height - 1 - ys) / max(bottom, 1))
    mask = np.maximum(horizontal, vertical)[..., None].astype(np.float32)
    blur = quad_size * 0.02
    # OpenCV's separable blur is several times faster than scipy's on a large canvas; the median colour
    # from every 4th pixel in each direction is the same to within a grey level.
    blurred = cv2.GaussianBlur(padded, (0, 0), sigmaX=blur, sigmaY=blur, borderType=cv2.BORDER_REFLECT)
    own = np.zeros((height, width), dtype=np.float32)
    own[top : height - bottom, left : width - right] = 1.0
    blur_weight = np.clip(mask * 3.0 + 1.0, 0.0, 1.0) * (1.0 - own[..., None])
    fade_weight = np.clip(mask, 0.0, 1.0)
    padded += (blurred - padded) * blur_weight
    padded += (np.median(padded[::4, ::4], axis=(0, 1)) - padded) * fade_weight
    return padded, own


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int) -> AlignedFace:
    """FFHQ-aligned ``size × size`` RGB crop of the face with these landmarks.

    Large photos are first shrunk by an integer factor with area averaging (as FFHQ does) to avoid
    aliasing; a quad leaving the photo triggers blurred mirror padding.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be an RGB (H, W, 3) array; got {getattr(image, 'shape', None)}.")
    if size < 8:
        raise ValueError(f"Aligned size must be at least 8 px; got {size}.")
    points = _check_landmarks(landmarks)
    quad = ffhq_quad(points)
    quad_size = float(np.hypot(*(quad[3] - quad[0])))
    # Only the quad and its margin are read: shrinking a whole 12-MP photo costs more than the rest of
    # the alignment. The margin exceeds the padding border below, so padding decisions are unchanged.
    margin = int(np.ceil(quad_size * 0.15)) + 8
    left = max(int(np.floor(quad[:, 0].min())) - margin, 0)
    top = max(int(np.floor(quad[:, 1].min())) - margin, 0)
    right = min(int(np.ceil(quad[:, 0].max())) + margin, image.shape[1])
    bottom = min(int(np.ceil(quad[:, 1].max())) + margin, image.shape[0])
    if right <= left or bottom <= top:
        raise ValueError("The face lies outside the photo.")
    work = image[top:bottom, left:right]
    origin = np.array([left, top], dtype=np.float64)
    scale = 1.0
    shrink = int(np.floor(quad_size / size * 0.5))
    if shrink > 1:
        height, width = work.shape[:2]
        work = cv2.resize(
            work,
            (max(1, round(width / shrink)), max(1, round(height / shrink))),
            interpolation=cv2.INTER_AREA,
        )
        scale = work.shape[1] / width
    quad_work = (quad - origin) * scale
    height, width = work.shape[:2]
    fill = digital_fill(work, (left == 0, top == 0, right == image.shape[1], bottom == image.shape[0]))
    border = max(int(np.rint(quad_size * scale * 0.1)), 3)
    pad = [
        max(-int(np.floor(quad_work[:, 0].min())) + border, 0),
        max(-int(np.floor(quad_work[:, 1].min())) + border, 0),
        max(int(np.ceil(quad_work[:, 0].max())) - width + border, 0),
        max(int(np.ceil(quad_work[:, 1].max())) - height + border, 0),
    ]
    offset = np.zeros(2)
    canvas = work.astype(np.float32)
    own = np.ones((height, width), dtype=np.float32)
    if max(pad) > border - 4:
        pad = [max(p, int(np.rint(quad_size * scale * 0.3))) for p in pad]
        canvas, own = _pad_blurred_reflection(work, (pad[0], pad[1], pad[2], pad[3]), quad_size * scale)
        offset = np.array([pad[0], pad[1]], dtype=np.float64)
    source = (quad_work + offset).astype(np.float32)
    target = np.array([[0, 0], [0, size], [size, size], [size, 0]], dtype=np.float32)
    canvas_to_crop = cv2.getAffineTransform(source[:3], target[:3])
    aligned = cv2.warpAffine(
        canvas, canvas_to_crop, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    # A crop pixel is observed when every canvas pixel its bilinear sample reads is the photo's own.
    own_in_crop = cv2.warpAffine(
        own, canvas_to_crop, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    fill_in_crop = np.zeros((size, size), dtype=bool)
    if fill.any():
        fill_canvas = np.zeros(canvas.shape[:2], dtype=np.float32)
        row, column = int(offset[1]), int(offset[0])
        fill_canvas[row : row + height, column : column + width] = fill
        fill_in_crop = (
            cv2.warpAffine(fill_canvas, canvas_to_crop, (size, size), flags=cv2.INTER_LINEAR) >= 0.5
        )
    # Compose photo → shrunk/padded canvas → crop, to map landmarks and heatmaps back.
    photo_to_canvas = np.array(
        [[scale, 0, offset[0] - scale * origin[0]], [0, scale, offset[1] - scale * origin[1]], [0, 0, 1]]
    )
    matrix = (np.vstack([canvas_to_crop, [0, 0, 1]]) @ photo_to_canvas)[:2]
    aligned_points = points @ matrix[:, :2].T + matrix[:, 2]
    return AlignedFace(
        image=np.clip(np.rint(aligned), 0, 255).astype(np.uint8),
        landmarks=aligned_points,
        matrix=matrix,
        quad=quad,
        observed=own_in_crop >= OBSERVED_THRESHOLD,
        fill=fill_in_crop,
    )


def face_mask(landmarks: np.ndarray, shape: tuple[int, int], dilation: float = 0.08) -> np.ndarray:
    """Boolean face mask: convex hull of the jaw line and the brows raised by 15 % of the face height,
    dilated by ``dilation`` × the face height (so the forehead and cheek outline are included)."""
    points = _check_landmarks(landmarks)
    face_height = float(points[:, 1].max() - points[:, 1].min())
    brows = points[17:27].copy()
    brows[:, 1] -= 0.15 * face_height
    return _dilated_hull(np.concatenate([points[:17], brows]), shape, int(round(dilation * face_height)))


def inner_face_mask(landmarks: np.ndarray, shape: tuple[int, int], dilation: float = 0.05) -> np.ndarray:
    """Boolean mask of the inner face: convex hull of the brows, eyes, nose and mouth (iBUG 17–67, no jaw
    line), dilated by ``dilation`` × the face height. It stays inside the photo in tighter framings than
    the whole face outline does."""
    points = _check_landmarks(landmarks)
    face_height = float(points[:, 1].max() - points[:, 1].min())
    return _dilated_hull(points[17:68], shape, int(round(dilation * face_height)))


def _dilated_hull(points: np.ndarray, shape: tuple[int, int], radius: int) -> np.ndarray:
    """Boolean mask of the points' convex hull dilated by an elliptical ``radius`` (none at 0)."""
    mask = np.zeros(shape[:2], dtype=np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    if radius > 0:
        mask = cv2.dilate(
            mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        )
    return mask.astype(bool)


# Brows, nose and eyes (iBUG 17–47): the mirror is fitted on the rigid upper face, so that an asymmetric
# mouth or lip (what the score looks for) does not pull the fit.
MIRROR_FIT_POINTS = slice(17, 48)


def symmetric_target(
    image: np.ndarray, landmarks: np.ndarray, fit: np.ndarray | None, weight: float
) -> np.ndarray:
    """``(1 − weight) · face + weight · mirrored face``: the face blended with its own mirror image,
    warped onto it by the similarity that best maps the mirrored brows, eyes and nose onto the face's
    (iBUG mirror order). A normal face is nearly mirror-symmetric, so fitting the normal prior to this
    target leaves a one-sided defect (a displaced lip, a notch, a local warp) less room to be
    reproduced. Pixels whose mirror is outside ``fit`` (``None``: every pixel) keep the face's own value.
    Measured, not the default: it copies a one-sided notch onto the other side (report section 14)."""
    from ml.landmarks.formats import IBUG68_FLIP_IDX

    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"The symmetry weight must lie in [0, 1]; got {weight}.")
    if weight == 0.0:
        return image
    points = _check_landmarks(landmarks)
    height, width = image.shape[:2]
    flipped_points = points[list(IBUG68_FLIP_IDX)].copy()
    flipped_points[:, 0] = width - 1 - flipped_points[:, 0]
    matrix, _ = cv2.estimateAffinePartial2D(
        flipped_points[MIRROR_FIT_POINTS].astype(np.float32), points[MIRROR_FIT_POINTS].astype(np.float32)
    )
    if matrix is None:
        raise ValueError("The face's mirror image could not be fitted to its landmarks.")
    mirrored = cv2.warpAffine(
        np.ascontiguousarray(image[:, ::-1]),
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    source = np.ones((height, width), np.uint8) if fit is None else (fit > 0).astype(np.uint8)
    usable = cv2.warpAffine(
        np.ascontiguousarray(source[:, ::-1]),
        matrix,
        (width, height),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    ).astype(bool)
    blended = image.astype(np.float32)
    blended[usable] = (1.0 - weight) * blended[usable] + weight * mirrored[usable].astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
