"""Photo ingest: check an uploaded photo, strip its metadata and store it.

The type is detected from the file's content (magic bytes, then Pillow restricted to that one
format), never from its name or the client's content type. Sizes are checked before anything is
decoded: the byte count first, then the pixel count from the header. The stored image is an 8-bit
sRGB PNG with no metadata at all (no EXIF, GPS, ICC profile, XMP, text chunks or comments), turned
upright by its EXIF orientation; a JPEG thumbnail is stored beside it. Only four capture fields are
kept, in the database: capture time, camera make, camera model and focal length.

The client's file name is never stored or logged: it may hold a patient's name.

All or nothing: the record, its audit event and its jobs are written in one transaction, and the
files written to storage are deleted again if that transaction does not commit; once it has
committed they stay, whatever happens next (the jobs are sent to the broker after the commit, and a
broker outage only delays them: see ``webapp.runs.dispatch``). Call ``photo_ingest`` once
per file and outside any enclosing transaction: if an enclosing transaction rolls back after a
successful call, the stored files of that call are not deleted (Django has no rollback hook).
"""

import datetime
import hashlib
import io
import logging
import re
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils.datastructures import MultiValueDict
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps, PngImagePlugin

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.studies.models import Photo, PhotoView, Study, Visit

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS = "JPEG, PNG, TIFF or WebP"
THUMBNAIL_LONGEST_SIDE = 512
THUMBNAIL_JPEG_QUALITY = 85
# Level 1 is about four times faster than zlib's default on a 12-megapixel photo and the file is
# only about 10 % larger; ingest time matters more than storage here.
PNG_COMPRESS_LEVEL = 1
_HASH_CHUNK_BYTES = 1024 * 1024
_SNIFF_BYTES = 64
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
# Exceptions Pillow raises for damaged or truncated data while reading headers or decoding.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError, KeyError)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class IngestError(ValueError):
    """An upload was refused. ``message`` is a sentence to show the user; ``code`` a short slug."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class CaptureFields:
    """The only metadata Facet keeps from a photo."""

    capture_time: datetime.datetime | None = None
    camera_make: str = ""
    camera_model: str = ""
    focal_length_mm: float | None = None


@dataclass(frozen=True)
class _PreparedPhoto:
    png: bytes
    thumbnail_jpeg: bytes
    source_format: str
    width: int
    height: int
    capture: CaptureFields
    colour_profile: str


def photo_ingest(
    *,
    visit: Visit,
    view: str,
    upload: UploadedFile,
    uploaded_by: AbstractBaseUser,
    request: HttpRequest | None = None,
    on_stored: Callable[[Photo], object] | None = None,
    capture: CaptureFields | None = None,
    source_format: str | None = None,
) -> Photo:
    """Validate ``upload`` and store it as a metadata-free PNG plus thumbnail; ``on_stored(photo)`` runs
    in the same transaction (the analysis app queues the study's analyses there).

    Raises :class:`IngestError` with a user-facing message for any file that is refused; nothing is
    then left behind (no Photo, no job, no audit event, no stored file). Permissions are the
    caller's business (``Capability.UPLOAD``). An importer that decoded another container itself (DICOM:
    ``webapp.exports.services.dicom_import``) passes the capture fields it read and its format's name.
    """
    if view not in PhotoView.values:
        choices = ", ".join(PhotoView.values)
        raise IngestError(f"Unknown photo view {view!r}; choose one of {choices}.", "unknown_view")
    study = visit.subject.study
    max_bytes = settings.FACET_MAX_UPLOAD_BYTES
    _check_byte_size(upload.size, max_bytes)
    content_hash, byte_count = _hash_upload(upload, max_bytes)
    _refuse_duplicate(study, content_hash)
    prepared = _prepare(upload)
    if capture is not None or source_format is not None:
        prepared = replace(
            prepared,
            capture=capture or prepared.capture,
            source_format=source_format or prepared.source_format,
        )

    photo = Photo(
        study=study,
        visit=visit,
        view=view,
        content_hash=content_hash,
        image_hash=hashlib.sha256(prepared.png).hexdigest(),
        source_format=prepared.source_format,
        width=prepared.width,
        height=prepared.height,
        capture_time=prepared.capture.capture_time,
        camera_make=prepared.capture.camera_make,
        camera_model=prepared.capture.camera_model,
        focal_length_mm=prepared.capture.focal_length_mm,
        uploaded_by=uploaded_by,
    )
    written: list[str] = []
    committed: list[bool] = []
    try:
        with transaction.atomic():
            # Registered first, so it runs before any other commit hook (the jobs' sends): from then
            # on the rows exist and the files belong to them, whatever a later hook does.
            transaction.on_commit(lambda: committed.append(True))
            # The names come from Photo's upload_to functions (content hash), never from the client.
            photo.image.save("photo.png", ContentFile(prepared.png), save=False)
            written.append(photo.image.name)
            photo.thumbnail.save("thumbnail.jpg", ContentFile(prepared.thumbnail_jpeg), save=False)
            written.append(photo.thumbnail.name)
            _save_unique(photo)
            view_label = PhotoView(view).label
            audit_record(
                action=AuditAction.CREATE,
                summary=f"Uploaded a {view_label} photo of {visit.subject.code}, visit {visit.label!r}",
                target=photo,
                request=request,
                actor=uploaded_by,
                details={
                    "subject": visit.subject.code,
                    "visit": visit.label,
                    "view": view,
                    "bytes": byte_count,
                    "content_hash": content_hash,
                    "source_format": prepared.source_format,
                    "width": prepared.width,
                    "height": prepared.height,
                    "colour_profile": prepared.colour_profile,
                },
            )
            if on_stored is not None:
                on_stored(photo)
    except BaseException:
        if not committed:
            _delete_stored_files(photo, written)
        raise
    return photo


def _check_byte_size(size: int | None, max_bytes: int) -> None:
    if size == 0:
        raise IngestError("The file is empty (0 bytes); choose the photo file again.", "empty_file")
    if size is not None and size > max_bytes:
        raise IngestError(_too_large_message(size, max_bytes), "file_too_large")


def _too_large_message(size: int, max_bytes: int) -> str:
    return (
        f"The file is {size / 1e6:.1f} MB, more than the limit of {max_bytes / 1e6:.1f} MB; "
        "export the photo at a smaller size."
    )


def _hash_upload(upload: UploadedFile, max_bytes: int) -> tuple[str, int]:
    """SHA-256 and length of the upload, read in chunks and stopped as soon as it passes the limit."""
    digest = hashlib.sha256()
    byte_count = 0
    for chunk in upload.chunks(_HASH_CHUNK_BYTES):
        byte_count += len(chunk)
        if byte_count > max_bytes:
            raise IngestError(_too_large_message(byte_count, max_bytes), "file_too_large")
        digest.update(chunk)
    if byte_count == 0:
        raise IngestError("The file is empty (0 bytes); choose the photo file again.", "empty_file")
    return digest.hexdigest(), byte_count


def _refuse_duplicate(study: Study, content_hash: str) -> None:
    existing = (
        Photo.objects.filter(study=study, content_hash=content_hash).select_related("visit__subject").first()
    )
    if existing is not None:
        raise _duplicate_error(existing)


def _duplicate_error(existing: Photo) -> IngestError:
    return IngestError(
        f"This exact file is already in the study: subject {existing.visit.subject.code}, "
        f"visit {existing.visit.label!r}, {existing.get_view_display()} view.",
        "duplicate",
    )


def _save_unique(photo: Photo) -> None:
    """Insert the photo; a duplicate that raced past the first check gets the same clear message."""
    try:
        with transaction.atomic():
            photo.save()
    except IntegrityError:
        existing = (
            Photo.objects.filter(study=photo.study, content_hash=photo.content_hash)
            .select_related("visit__subject")
            .first()
        )
        if existing is None:
            raise
        raise _duplicate_error(existing) from None


def _delete_stored_files(photo: Photo, names: list[str]) -> None:
    for name in names:
        try:
            photo.image.storage.delete(name)
        except Exception:
            # Cleanup must not hide the original error; an orphan is logged for an operator.
            logger.exception("Could not delete the stored file %s of a failed upload", name)


# --- type detection and decoding -------------------------------------------------------------


def _sniff_format(head: bytes) -> str:
    """The Pillow format name of the content, judged from its first bytes only."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        box_size = int.from_bytes(head[:4], "big")
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
        if brands & _AVIF_BRANDS:
            raise IngestError(
                f"AVIF images are not accepted; export the photo as {ACCEPTED_FORMATS}.", "unsupported_format"
            )
        if brands & _HEIF_BRANDS:
            return "HEIF"
    raise IngestError(
        f"The file's content is not an image Facet accepts ({_describe_content(head)}); "
        f"upload a {ACCEPTED_FORMATS} photo.",
        "unsupported_format",
    )


def _describe_content(head: bytes) -> str:
    known = (
        (b"GIF87a", "it is a GIF image"),
        (b"GIF89a", "it is a GIF image"),
        (b"BM", "it is a BMP image"),
        (b"%PDF", "it is a PDF document"),
        (b"PK\x03\x04", "it is a ZIP archive or an Office document"),
        (b"II+\x00", "it is a BigTIFF image"),
        (b"MM\x00+", "it is a BigTIFF image"),
    )
    for magic, description in known:
        if head.startswith(magic):
            return description
    return "its first bytes match no supported image format"


def _prepare(upload: UploadedFile) -> _PreparedPhoto:
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise ImproperlyConfigured(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process; photo ingest needs it False "
            "so that truncated uploads are refused instead of stored half-grey."
        )
    upload.seek(0)
    source_format = _sniff_format(upload.read(_SNIFF_BYTES))
    if source_format == "HEIF" and "HEIF" not in Image.registered_extensions().values():
        raise IngestError(
            "HEIC/HEIF photos are not supported; export the photo as JPEG (on an iPhone: Settings › "
            "Camera › Formats › Most Compatible) and upload it again.",
            "heic_unsupported",
        )
    upload.seek(0)
    with warnings.catch_warnings():
        # Pillow warns above Image.MAX_IMAGE_PIXELS and raises above twice that; both are refusals.
        # (catch_warnings is process-wide: another thread's warning filters are briefly overridden.)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(upload, formats=[source_format])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise _too_many_pixels_error(None) from error
        except _DECODE_ERRORS as error:  # UnidentifiedImageError is an OSError
            raise _decode_error(source_format, error) from error
        with image:
            _check_dimensions(image.size)
            _refuse_several_images(image, source_format)
            try:
                # A full decode: a truncated or corrupt file fails here, not later in a worker.
                image.load()
                capture = _capture_fields(image)
                ImageOps.exif_transpose(image, in_place=True)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
                raise _too_many_pixels_error(image.size) from error
            except _DECODE_ERRORS as error:
                raise _decode_error(source_format, error) from error
            rgb, colour_profile = _to_srgb8(image)
            # Nothing of the source's info (EXIF, ICC, XMP, comments, DPI, text) may reach the encoders.
            rgb.info = {}
            return _PreparedPhoto(
                png=_encode_png(rgb),
                thumbnail_jpeg=_encode_thumbnail(rgb),
                source_format="JPEG" if image.format == "MPO" else (image.format or source_format),
                width=rgb.width,
                height=rgb.height,
                capture=capture,
                colour_profile=colour_profile,
            )


def _decode_error(source_format: str, error: Exception) -> IngestError:
    """The truthful refusal for a decoding error: metadata too large to unpack is not damage."""
    if isinstance(error, ValueError) and "Decompressed data too large" in str(error):
        return IngestError(
            f"The {source_format} carries compressed metadata (a text or profile chunk) that unpacks to "
            f"more than {PngImagePlugin.MAX_TEXT_CHUNK // 2**20} MB; Facet refuses it rather than unpack "
            "it. Save the photo again without metadata (export it as a new JPEG or PNG) and upload that.",
            "metadata_too_large",
        )
    return _damaged_error(source_format)


def _refuse_several_images(image: Image.Image, source_format: str) -> None:
    """A multi-page TIFF or an animated PNG/WebP holds several images, and Facet keeps one per photo:
    say so instead of silently keeping the first. (JPEG's MPO previews are not separate photos.)"""
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and source_format in ("TIFF", "PNG", "WEBP"):
        unit = "pages" if source_format == "TIFF" else "animation frames"
        raise IngestError(
            f"The {source_format} file holds {frames} {unit}; Facet stores one image per photo. Save the "
            "page you want as a file of its own and upload that.",
            "several_images",
        )


def refuse_several_files(files: MultiValueDict) -> None:
    """One photo per upload request: a request with more files is refused, not half-kept."""
    count = sum(len(values) for _, values in files.lists())
    if count > 1:
        raise IngestError(
            f"The request holds {count} files; upload one photo per request, each gets its own answer.",
            "several_files",
        )


def _damaged_error(source_format: str) -> IngestError:
    return IngestError(
        f"The file starts like a {source_format} image but is damaged or truncated and cannot be decoded; "
        "upload the original photo again.",
        "damaged_image",
    )


def _too_many_pixels_error(size: tuple[int, int] | None) -> IngestError:
    limit = settings.FACET_MAX_PIXELS / 1e6
    if size is None:
        stated = "declares more pixels than Facet can safely decode"
    else:
        stated = f"is {size[0]}×{size[1]} pixels ({size[0] * size[1] / 1e6:.1f} megapixels)"
    return IngestError(
        f"The image {stated}; the limit is {limit:g} megapixels. Export the photo at a smaller size.",
        "too_many_pixels",
    )


def _check_dimensions(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > settings.FACET_MAX_PIXELS:
        raise _too_many_pixels_error(size)
    min_side = settings.FACET_MIN_SIDE
    if min(width, height) < min_side:
        raise IngestError(
            f"The image is only {width}×{height} pixels; a photo must be at least {min_side} pixels "
            "on each side.",
            "too_small",
        )


# --- colour --------------------------------------------------------------------------------------


@cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb8(image: Image.Image) -> tuple[Image.Image, str]:
    """8-bit sRGB of any supported mode, and a note on the colour profile for the audit trail."""
    icc = image.info.get("icc_profile")
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        image = _sixteen_bit_grey_to_l(image)
    elif mode == "F":
        raise IngestError(
            "Floating-point images are not supported; export the photo as an 8- or 16-bit image.",
            "unsupported_colour_mode",
        )
    elif mode == "1":
        image = image.convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La")
    if has_alpha or (image.mode == "P" and "transparency" in image.info):
        image = _flatten_on_white(image)
    elif image.mode in ("P", "RGBX", "YCbCr"):
        image = image.convert("RGB")
    elif image.mode not in ("RGB", "L", "CMYK"):
        raise IngestError(
            f"Images in the {image.mode} colour mode are not supported; export the photo as RGB.",
            "unsupported_colour_mode",
        )
    colour_profile = "none (assumed sRGB)"
    if icc:
        image, colour_profile = _apply_icc(image, icc)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image, colour_profile


def _sixteen_bit_grey_to_l(image: Image.Image) -> Image.Image:
    """Scale 16-bit grey (0–65535) to 8 bits by value × 255 / 65535, rounded; never clip."""
    values = np.asarray(image)
    if image.mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
        raise IngestError(
            "32-bit integer images are not supported; export the photo as an 8- or 16-bit image.",
            "unsupported_colour_mode",
        )
    scaled = (values.astype(np.uint32) * 255 + 32767) // 65535
    return Image.fromarray(scaled.astype(np.uint8), mode="L")


def _flatten_on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def _apply_icc(image: Image.Image, icc: bytes) -> tuple[Image.Image, str]:
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if image.mode == "RGB" and ImageCms.getProfileDescription(profile).strip().startswith("sRGB"):
            return image, "embedded sRGB profile dropped"
        converted = ImageCms.profileToProfile(image, profile, _srgb_profile(), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # An unreadable profile or one that does not match the pixels: the pixels are still valid.
        return image, "unusable embedded profile ignored (assumed sRGB)"
    # The profile's own description is not recorded: it is metadata from the file like any other.
    return converted, "embedded profile converted to sRGB"


# --- encoding ------------------------------------------------------------------------------------


def _encode_png(rgb: Image.Image) -> bytes:
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _encode_thumbnail(rgb: Image.Image) -> bytes:
    scale = THUMBNAIL_LONGEST_SIDE / max(rgb.size)
    thumbnail = rgb
    if scale < 1:
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        thumbnail = rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="JPEG", quality=THUMBNAIL_JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


# --- capture fields ------------------------------------------------------------------------------

_EXIF_DATETIME = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$")
_EXIF_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def _capture_fields(image: Image.Image) -> CaptureFields:
    """Capture time, camera make/model and focal length from EXIF; everything else is ignored.

    A capture time without OffsetTimeOriginal is stored as if it were UTC: the camera's time zone
    is unknown, and UTC at least keeps the clock reading the photographer saw.
    """
    try:
        exif = image.getexif()
        exif_ifd: Any = exif.get_ifd(ExifTags.IFD.Exif)
    except _DECODE_ERRORS:
        return CaptureFields()
    return CaptureFields(
        capture_time=_exif_datetime(
            exif_ifd.get(ExifTags.Base.DateTimeOriginal), exif_ifd.get(ExifTags.Base.OffsetTimeOriginal)
        ),
        camera_make=_exif_text(exif.get(ExifTags.Base.Make)),
        camera_model=_exif_text(exif.get(ExifTags.Base.Model)),
        focal_length_mm=_exif_positive_float(exif_ifd.get(ExifTags.Base.FocalLength)),
    )


def _exif_text(value: object, max_length: int = 100) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="ignore")
    if not isinstance(value, str):
        return ""
    printable = "".join(char if char.isprintable() else " " for char in value.replace("\x00", ""))
    return " ".join(printable.split())[:max_length]


def _exif_positive_float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return round(number, 3) if 0 < number < 10_000 else None


def _exif_datetime(value: object, offset: object) -> datetime.datetime | None:
    match = _EXIF_DATETIME.match(_exif_text(value))
    if not match:
        return None
    try:
        naive = datetime.datetime(*(int(part) for part in match.groups()))
    except ValueError:
        return None
    zone = datetime.UTC
    offset_match = _EXIF_OFFSET.match(_exif_text(offset))
    if offset_match:
        sign = -1 if offset_match.group(1) == "-" else 1
        delta = datetime.timedelta(hours=int(offset_match.group(2)), minutes=int(offset_match.group(3)))
        if delta <= datetime.timedelta(hours=14):
            zone = datetime.timezone(sign * delta)
    return naive.replace(tzinfo=zone)
