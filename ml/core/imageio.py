"""Image loading into the library's image contract: ``numpy`` RGB ``uint8`` of shape ``(H, W, 3)``."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 100_000_000
# Cameras often write multi-picture JPEGs (MPO: the photo plus a preview); both decode through libjpeg.
JPEG_FORMATS = ("JPEG", "MPO")


class ImageLoadError(ValueError):
    """The input could not be read as an image; the message says why in plain words."""


def _read_bytes(source: str | Path | bytes) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), "The image data"
    path = Path(source)
    label = f"Image file '{path}'"
    if not path.exists():
        raise ImageLoadError(f"{label} does not exist.")
    if path.is_dir():
        raise ImageLoadError(f"'{path}' is a folder, not an image file.")
    try:
        return path.read_bytes(), label
    except OSError as error:
        raise ImageLoadError(f"{label} could not be read: {error.strerror or error}.") from error


def _to_rgb8(image: Image.Image) -> np.ndarray:
    """Convert any Pillow mode (1, L, LA, P, I;16, I, F, CMYK, RGBA, ...) to 8-bit RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16/32-bit and float greyscale: scale by the type's range, not Pillow's clipping conversion.
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or (image.mode == "I" and values.max(initial=0) > 255):
            scaled = values / 65535.0 * 255.0
        elif image.mode == "F" and values.max(initial=0) <= 1.0:
            scaled = values * 255.0
        else:
            scaled = values
        grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite transparency onto white, the usual background of clinical photos.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    rgb = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def load_image(source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load a photo as RGB ``uint8`` ``(H, W, 3)``, upright according to its EXIF orientation.

    ``source`` is a path or the encoded bytes. Greyscale, palette, CMYK, 16-bit and images with
    alpha are converted to 8-bit RGB (alpha composited on white). Raises :class:`ImageLoadError`
    for empty, truncated or non-image input and for images larger than ``max_pixels``.
    """
    return _decode(source, max_pixels, None)[0]


def load_image_reduced(
    source: str | Path | bytes, min_side: int, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, float]:
    """:func:`load_image` for analyses that need no more than ``min_side`` pixels on the shorter side:
    a JPEG whose shorter side is at least twice that is decoded at 1/2, 1/4 or 1/8 of its size by
    libjpeg's DCT scaling (Pillow's ``Image.draft``), several times faster than a full decode of a
    12-MP photo followed by a resize. Returns the image and its scale relative to the full photo (1.0
    when not reduced: other formats, or photos already small), to carry full-size coordinates over.
    """
    return _decode(source, max_pixels, min_side)


def _decode(source: str | Path | bytes, max_pixels: int, min_side: int | None) -> tuple[np.ndarray, float]:
    data, label = _read_bytes(source)
    if not data:
        raise ImageLoadError(f"{label} is empty (0 bytes); it is not an image.")
    previous_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # Pillow warns above its limit and raises above twice it; turn both into our error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = max_pixels
            with Image.open(io.BytesIO(data)) as opened:
                width, height = opened.size
                if width * height > max_pixels:
                    raise ImageLoadError(
                        f"{label} is {width}×{height} = {width * height / 1e6:.1f} megapixels, "
                        f"more than the limit of {max_pixels / 1e6:.1f} megapixels."
                    )
                scale = 1.0
                if (
                    min_side is not None
                    and opened.format in JPEG_FORMATS
                    and min(width, height) >= 2 * min_side
                ):
                    factor = min_side / min(width, height)
                    opened.draft("RGB", (math.ceil(width * factor), math.ceil(height * factor)))
                    scale = opened.size[0] / width
                opened.load()
                # Pillow already reduces 48/64-bit colour PNGs to 8 bits per channel (high byte).
                pixels = _to_rgb8(ImageOps.exif_transpose(opened))
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageLoadError(
            f"{label} has more than the limit of {max_pixels / 1e6:.1f} megapixels."
        ) from error
    except (UnidentifiedImageError, ImportError) as error:
        # ImportError: once ultralytics is imported (the yolo-pose68 detector) it wraps Image.open to
        # try the pi-heif plugin on files Pillow cannot identify, and pi-heif is not installed.
        raise ImageLoadError(
            f"{label} is not an image in a format that can be read (JPEG, PNG, TIFF, ...)."
        ) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageLoadError(f"{label} is damaged or truncated and cannot be decoded: {error}.") from error
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ImageLoadError(f"{label} has no pixels.")
    return pixels, scale


def _check_rgb(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"Expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}.")


def encode_png(image: np.ndarray) -> bytes:
    """Encode an RGB ``uint8`` image (or a 2-D ``uint8`` mask) as PNG bytes."""
    if image.ndim == 2:
        if image.dtype != np.uint8:
            raise ValueError(f"Expected a uint8 mask, got {image.dtype}.")
    else:
        _check_rgb(image)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    """Encode an RGB ``uint8`` image as JPEG bytes."""
    _check_rgb(image)
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be between 1 and 100, got {quality}.")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
