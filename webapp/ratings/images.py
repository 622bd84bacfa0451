"""The images raters see: re-encoded from the stored photo's pixels, optionally cropped to a region,
with no metadata at all (no EXIF, ICC profile, comment or file name), and attention-check cards."""

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from webapp.analysis.kinds import AnalysisKind
from webapp.analysis.selectors import latest_result
from webapp.ratings.models import CropRegion
from webapp.studies.models import Photo

MAX_SIDE = 1200
JPEG_QUALITY = 90
# iBUG-68 indices: nose 27–35 and mouth 48–67.
MOUTH_NOSE_POINTS = list(range(27, 36)) + list(range(48, 68))
# Margins around the landmarks' box, as a share of its size.
REGION_MARGINS = {CropRegion.FACE: 0.25, CropRegion.MOUTH_NOSE: 0.35}


class CropUnavailable(ValueError):
    """The photo has no landmarks to crop the chosen region from."""


def _landmarks(photo: Photo) -> np.ndarray:
    result = latest_result(photo.pk, AnalysisKind.LANDMARKS)
    faces = (result.data.get("faces") or []) if result is not None else []
    if not faces:
        raise CropUnavailable(
            "has no landmarks result with a face (run the landmarks analysis first, or rate whole photos)"
        )
    face = max(faces, key=lambda item: (item["box"][2] - item["box"][0]) * (item["box"][3] - item["box"][1]))
    return np.asarray(face["landmarks"], dtype=float)


def crop_box(photo: Photo, region: str) -> tuple[int, int, int, int] | None:
    """The pixel box ``(left, top, right, bottom)`` of the region, None for the whole photo."""
    if region == CropRegion.WHOLE:
        return None
    points = _landmarks(photo)
    if region == CropRegion.MOUTH_NOSE:
        points = points[MOUTH_NOSE_POINTS]
    low, high = points.min(axis=0), points.max(axis=0)
    margin = (high - low) * REGION_MARGINS[CropRegion(region)]
    left, top = np.maximum(low - margin, 0)
    right, bottom = np.minimum(high + margin, [photo.width, photo.height])
    return int(left), int(top), int(np.ceil(right)), int(np.ceil(bottom))


def _jpeg(image: Image.Image) -> bytes:
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    # A fresh image from the pixels alone: nothing of the source's info dict can be carried over.
    clean = Image.frombytes("RGB", image.size, image.convert("RGB").tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def blinded_image(photo: Photo, region: str) -> bytes:
    """The JPEG a rater sees of this photo."""
    box = crop_box(photo, region)
    with photo.image.open("rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    if box is not None:
        image = image.crop(box)
    return _jpeg(image)


def attention_image(expected: int) -> bytes:
    """A card asking for a given rating; a rater who reads it answers correctly."""
    image = Image.new("RGB", (900, 900), (236, 240, 243))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=54)
    small = ImageFont.load_default(size=34)
    draw.text((450, 380), "Attention check", fill=(27, 38, 49), font=font, anchor="mm")
    draw.text(
        (450, 480), f"Please answer {expected} for this image.", fill=(27, 38, 49), font=small, anchor="mm"
    )
    return _jpeg(image)
