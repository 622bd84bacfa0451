"""Photo ingest: bad inputs are refused with a clear message and leave nothing behind; awkward ones are
converted correctly and stored without metadata."""

import datetime
import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from PIL import ExifTags, Image, ImageCms

from webapp.analysis.models import AnalysisJob
from webapp.analysis.services import photo_upload
from webapp.audit.models import AuditEvent
from webapp.studies import ingest
from webapp.studies.ingest import IngestError
from webapp.studies.models import Photo, VisitRole
from webapp.studies.services import subject_create, visit_create

pytestmark = pytest.mark.django_db

PATIENT_FILE_NAME = "Jane_Doe_1961-04-02_before.jpg"


# --- helpers ---------------------------------------------------------------------------------------


def upload_of(
    data: bytes, name: str = PATIENT_FILE_NAME, content_type: str = "image/jpeg"
) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def textured_rgb(size: tuple[int, int] = (160, 120), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height RGB pixels: a decompression-bomb-shaped file."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + png_chunk(b"IEND", b"")
    )


def png_chunk_types(data: bytes) -> list[bytes]:
    kinds, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kinds.append(data[offset + 4 : offset + 8])
        offset += 12 + length
    return kinds


def jpeg_marker_types(data: bytes) -> list[int]:
    """The marker bytes of the segments before the image data (APPn, COM, DQT, ...)."""
    markers, offset = [], 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        markers.append(marker)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        offset += 2 + length
    return markers


def media_files(media_root: Path) -> list[Path]:
    return [path for path in Path(media_root).rglob("*") if path.is_file()]


def assert_refused(visit, data: bytes, code: str, *words: str, view: str = "frontal", user=None, **upload):
    with pytest.raises(IngestError) as caught:
        photo_upload(
            visit=visit, view=view, upload=upload_of(data, **upload), uploaded_by=user or visit.uploader
        )
    error = caught.value
    assert error.code == code, error.message
    assert error.message.endswith("."), error.message
    for word in words:
        assert word.lower() in error.message.lower(), error.message
    return error


def assert_nothing_left(media_root: Path) -> None:
    assert Photo.objects.count() == 0
    assert AnalysisJob.objects.count() == 0
    assert not AuditEvent.objects.filter(object_type="studies.photo").exists()
    assert media_files(media_root) == []


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The shared fixtures create five users; the production hasher makes that seconds per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sent_jobs(monkeypatch) -> list[AnalysisJob]:
    """Record jobs sent to Celery on commit instead of needing a broker."""
    sent: list[AnalysisJob] = []
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: sent.append(run))
    return sent


@pytest.fixture
def visit(fast_password_hashing, study_with_members, sent_jobs):
    coordinator = study_with_members["coordinator"]
    subject = subject_create(study=study_with_members["study"], code="S001", actor=coordinator)
    baseline = visit_create(
        subject=subject, label="baseline", role=VisitRole.PRE, date=None, actor=coordinator
    )
    baseline.uploader = coordinator
    return baseline


@pytest.fixture
def second_visit(visit):
    week12 = visit_create(
        subject=visit.subject, label="week 12", role=VisitRole.POST, date=None, actor=visit.uploader
    )
    week12.uploader = visit.uploader
    return week12


def ingest_ok(visit, data: bytes, view: str = "frontal", **upload) -> Photo:
    photo = photo_upload(visit=visit, view=view, upload=upload_of(data, **upload), uploaded_by=visit.uploader)
    photo.refresh_from_db()
    return photo


def stored_image(photo: Photo) -> Image.Image:
    with photo.image.open("rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image


# --- refused inputs ----------------------------------------------------------------------------------


def test_truncated_jpeg_is_refused(visit, isolated_media_root):
    data = encode(textured_rgb((300, 200)), "JPEG", quality=90)
    assert_refused(visit, data[: len(data) // 2], "damaged_image", "JPEG", "truncated")
    assert_nothing_left(isolated_media_root)


def test_truncated_png_is_refused(visit, isolated_media_root):
    data = encode(textured_rgb((300, 200)), "PNG")
    assert_refused(visit, data[: len(data) * 2 // 3], "damaged_image", "PNG", "truncated")
    assert_nothing_left(isolated_media_root)


def test_text_file_named_jpg_is_refused_by_content(visit, isolated_media_root):
    data = b"Subject Jane Doe, before treatment\n" * 20
    assert_refused(visit, data, "unsupported_format", "not an image", "JPEG, PNG", content_type="image/jpeg")
    assert_nothing_left(isolated_media_root)


def test_gif_named_jpg_is_refused_and_named(visit, isolated_media_root):
    data = encode(Image.new("P", (100, 100)), "GIF")
    assert_refused(visit, data, "unsupported_format", "GIF")
    assert_nothing_left(isolated_media_root)


def test_heic_is_refused_with_export_advice(visit, isolated_media_root):
    data = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic" + b"\x00" * 200
    assert_refused(visit, data, "heic_unsupported", "HEIC", "export", "JPEG", name="IMG_0001.HEIC")
    assert_nothing_left(isolated_media_root)


def test_decompression_bomb_header_is_refused_before_decoding(visit, isolated_media_root):
    data = png_header_only(30_000, 30_000)
    assert len(data) < 200
    assert_refused(visit, data, "too_many_pixels", "megapixels", "smaller")
    assert_nothing_left(isolated_media_root)


def test_header_over_the_default_pixel_limit_is_refused(visit, isolated_media_root, settings):
    assert settings.FACET_MAX_PIXELS == 60_000_000
    # 70 megapixels: over Facet's limit, under Pillow's own bomb warning, so Facet's check must catch it.
    error = assert_refused(
        visit, png_header_only(10_000, 7_000), "too_many_pixels", "10000×7000", "60 megapixels"
    )
    assert "70.0 megapixels" in error.message
    assert_nothing_left(isolated_media_root)


def test_real_image_over_a_lowered_pixel_limit_is_refused(visit, isolated_media_root, settings):
    settings.FACET_MAX_PIXELS = 30_000
    data = encode(textured_rgb((200, 200)), "PNG")
    assert_refused(visit, data, "too_many_pixels", "200×200", "0.03 megapixels")
    assert_nothing_left(isolated_media_root)


def test_one_pixel_image_is_refused(visit, isolated_media_root):
    assert_refused(visit, encode(Image.new("RGB", (1, 1)), "PNG"), "too_small", "1×1", "64 pixels")
    assert_nothing_left(isolated_media_root)


def test_empty_file_is_refused(visit, isolated_media_root):
    assert_refused(visit, b"", "empty_file", "empty")
    assert_nothing_left(isolated_media_root)


def test_file_over_the_byte_limit_is_refused(visit, isolated_media_root, settings):
    settings.FACET_MAX_UPLOAD_BYTES = 1_000
    assert_refused(visit, encode(textured_rgb((100, 100)), "PNG"), "file_too_large", "MB", "limit")
    assert_nothing_left(isolated_media_root)


def test_unknown_view_is_refused(visit, isolated_media_root):
    assert_refused(visit, encode(textured_rgb(), "PNG"), "unknown_view", "'top'", "frontal", view="top")
    assert_nothing_left(isolated_media_root)


def test_duplicate_names_the_existing_photo(visit, second_visit, isolated_media_root):
    data = encode(textured_rgb(), "JPEG")
    first = ingest_ok(visit, data, view="left45")
    files_before = sorted(media_files(isolated_media_root))
    error = assert_refused(second_visit, data, "duplicate", "S001", "'baseline'", "Left 45°")
    assert "week 12" not in error.message
    assert list(Photo.objects.all()) == [first]
    assert AnalysisJob.objects.count() == 1
    assert sorted(media_files(isolated_media_root)) == files_before


def test_duplicate_racing_past_the_check_gets_the_same_message(
    visit, second_visit, isolated_media_root, monkeypatch
):
    data = encode(textured_rgb(), "PNG")
    first = ingest_ok(visit, data)
    files_before = sorted(media_files(isolated_media_root))
    # The other request committed between our duplicate check and our insert.
    monkeypatch.setattr(ingest, "_refuse_duplicate", lambda study, content_hash: None)
    assert_refused(second_visit, data, "duplicate", "S001", "'baseline'", "Frontal")
    assert list(Photo.objects.all()) == [first]
    assert sorted(media_files(isolated_media_root)) == files_before


def test_failure_after_files_were_written_leaves_nothing(visit, isolated_media_root, monkeypatch):
    def broken_enqueue(**kwargs):
        raise RuntimeError("broker configuration broken")

    monkeypatch.setattr("webapp.analysis.services.jobs_enqueue_for_photo", broken_enqueue)
    with pytest.raises(RuntimeError):
        photo_upload(
            visit=visit,
            view="frontal",
            upload=upload_of(encode(textured_rgb(), "PNG")),
            uploaded_by=visit.uploader,
        )
    assert_nothing_left(isolated_media_root)


# --- accepted, awkward inputs --------------------------------------------------------------------


def test_cmyk_jpeg_colours_are_right(visit):
    cmyk = Image.new("CMYK", (96, 96), (0, 128, 255, 64))
    photo = ingest_ok(visit, encode(cmyk, "JPEG", quality=95))
    stored = stored_image(photo)
    assert stored.mode == "RGB"
    # Naive CMYK → RGB: R = (255 − C)(255 − K)/255 etc. An inverted (Adobe) CMYK misread would be far off.
    expected = np.array([191, 95, 0])
    assert np.abs(np.asarray(stored)[48, 48].astype(int) - expected).max() <= 6
    assert photo.source_format == "JPEG"


def test_sixteen_bit_grey_png_is_scaled_not_clipped(visit):
    levels = np.array([0, 257 * 50, 257 * 100, 32_768, 65_535], dtype=np.uint16)
    grey16 = np.repeat(np.repeat(levels, 20)[None, :], 80, axis=0)  # 100×80, five bands
    image = Image.fromarray(grey16)
    assert image.mode == "I;16"
    photo = ingest_ok(visit, encode(image, "PNG"), content_type="image/png")
    pixels = np.asarray(stored_image(photo))
    assert pixels.dtype == np.uint8 and pixels.shape == (80, 100, 3)
    assert [int(pixels[40, 20 * band + 10, 0]) for band in range(5)] == [0, 50, 100, 128, 255]
    assert (pixels[..., 0] == pixels[..., 2]).all()


def test_sixteen_bit_rgb_png_is_scaled(visit):
    value = 257 * 200
    header = struct.pack(">IIBBBBB", 80, 80, 16, 2, 0, 0, 0)
    row = b"\x00" + struct.pack(">HHH", value, 0, 65_535) * 80
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(row * 80))
        + png_chunk(b"IEND", b"")
    )
    photo = ingest_ok(visit, data)
    assert tuple(np.asarray(stored_image(photo))[10, 10]) == (200, 0, 255)


def exif_rotated_jpeg() -> bytes:
    """A 200×100 landscape sensor image with a red block top-left, EXIF orientation 6 and private metadata."""
    pixels = np.full((100, 200, 3), 200, dtype=np.uint8)
    pixels[:30, :30] = (255, 0, 0)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "Canon EOS R5"
    exif[ExifTags.Base.Software] = "SecretEditor 9.1"
    exif[ExifTags.Base.Artist] = "Dr Jane Roe"
    exif[ExifTags.Base.ImageDescription] = "Patient Mary Smith"
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    exif_ifd[ExifTags.Base.DateTimeOriginal] = "2024:05:01 10:20:30"
    exif_ifd[ExifTags.Base.OffsetTimeOriginal] = "+02:00"
    exif_ifd[ExifTags.Base.FocalLength] = 50.0
    exif_ifd[ExifTags.Base.BodySerialNumber] = "SN0123456789"
    exif_ifd[ExifTags.Base.CameraOwnerName] = "Clinic Owner"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 24.0)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(
        Image.fromarray(pixels),
        "JPEG",
        quality=95,
        exif=exif.tobytes(),
        icc_profile=srgb,
        comment=b"Mary Smith, chart 4711",
    )


PRIVATE_STRINGS = (
    b"SecretEditor",
    b"Jane Roe",
    b"Mary Smith",
    b"SN0123456789",
    b"Clinic Owner",
    b"Canon",
    b"4711",
)


def test_exif_rotated_photo_is_upright_and_stripped(visit):
    photo = ingest_ok(visit, exif_rotated_jpeg())
    assert (photo.width, photo.height) == (100, 200)
    stored = stored_image(photo)
    assert stored.size == (100, 200)
    pixels = np.asarray(stored)
    # Orientation 6 means "rotate 90° clockwise to view": the top-left block ends up top-right.
    assert tuple(pixels[10, 90]) == pytest.approx((255, 0, 0), abs=12)
    assert tuple(pixels[10, 10]) == pytest.approx((200, 200, 200), abs=12)

    with photo.image.open("rb") as handle:
        png = handle.read()
    assert png_chunk_types(png) == [b"IHDR"] + [b"IDAT"] * (len(png_chunk_types(png)) - 2) + [b"IEND"]
    assert not dict(stored.getexif())
    assert not set(stored.info) & {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment", "dpi"}
    with photo.thumbnail.open("rb") as handle:
        thumbnail_bytes = handle.read()
    thumbnail = Image.open(io.BytesIO(thumbnail_bytes))
    assert not dict(thumbnail.getexif())
    assert not set(thumbnail.info) & {"exif", "icc_profile", "comment", "xmp"}
    assert all(not 0xE1 <= marker <= 0xEF and marker != 0xFE for marker in jpeg_marker_types(thumbnail_bytes))
    for secret in PRIVATE_STRINGS:
        assert secret not in png and secret not in thumbnail_bytes

    assert photo.capture_time == datetime.datetime(2024, 5, 1, 8, 20, 30, tzinfo=datetime.UTC)
    assert (photo.camera_make, photo.camera_model, photo.focal_length_mm) == ("Canon", "Canon EOS R5", 50.0)
    event = AuditEvent.objects.get(object_type="studies.photo", object_id=str(photo.pk))
    recorded = repr(event.details) + event.summary
    for secret in ("SecretEditor", "Jane Roe", "Mary Smith", "SN0123456789", "Clinic Owner", "Jane_Doe"):
        assert secret not in recorded


def test_capture_time_without_offset_is_stored_as_utc(visit):
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2023:12:31 23:59:58"
    photo = ingest_ok(visit, encode(textured_rgb(), "JPEG", exif=exif.tobytes()))
    assert photo.capture_time == datetime.datetime(2023, 12, 31, 23, 59, 58, tzinfo=datetime.UTC)
    assert (photo.camera_make, photo.camera_model, photo.focal_length_mm) == ("", "", None)


def test_grayscale_becomes_rgb(visit):
    grey = Image.fromarray(np.tile(np.arange(0, 256, 2, dtype=np.uint8), (90, 1)))
    photo = ingest_ok(visit, encode(grey, "JPEG", quality=95))
    pixels = np.asarray(stored_image(photo))
    assert pixels.shape == (90, 128, 3)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()


def test_rgba_is_composited_on_white(visit):
    rgba = np.zeros((80, 80, 4), dtype=np.uint8)
    rgba[:, :40] = (255, 0, 0, 128)  # half-transparent red
    rgba[:, 40:] = (0, 0, 255, 0)  # fully transparent
    photo = ingest_ok(visit, encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    pixels = np.asarray(stored_image(photo)).astype(int)
    assert tuple(pixels[40, 60]) == (255, 255, 255)
    assert np.abs(pixels[40, 20] - (255, 127, 127)).max() <= 1


def test_palette_with_transparency_is_composited_on_white(visit):
    palette = Image.new("P", (80, 80), 1)
    palette.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)
    palette.paste(0, (0, 0, 40, 80))
    photo = ingest_ok(visit, encode(palette, "PNG", transparency=0))
    pixels = np.asarray(stored_image(photo))
    assert tuple(pixels[40, 10]) == (255, 255, 255)
    assert tuple(pixels[40, 60]) == (0, 128, 0)


@pytest.mark.parametrize("fmt", ["WEBP", "TIFF"])
def test_webp_and_tiff_are_accepted(visit, fmt):
    photo = ingest_ok(visit, encode(textured_rgb(), fmt, **({"lossless": True} if fmt == "WEBP" else {})))
    assert photo.source_format == fmt
    assert np.array_equal(np.asarray(stored_image(photo)), np.asarray(textured_rgb()))


SRGB_PRIMARIES_D50 = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))


def s15_fixed16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def rgb_matrix_icc_profile(red_xyz, green_xyz, blue_xyz) -> bytes:
    """A minimal ICC v2 RGB display profile with the given primaries (D50 XYZ) and linear curves."""

    def xyz(values) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15_fixed16(value) for value in values)

    description = b"Test primaries\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(description)) + description + b"\0" * 8 + b"\0" * 70
    linear = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0100) + b"\0\0"
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz((0.9642, 1.0, 0.8249))),
        (b"rXYZ", xyz(red_xyz)),
        (b"gXYZ", xyz(green_xyz)),
        (b"bXYZ", xyz(blue_xyz)),
        (b"rTRC", linear),
        (b"gTRC", linear),
        (b"bTRC", linear),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table = data = b""
    for signature, payload in tags:
        payload += b"\0" * (-len(payload) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(payload))
        data += payload
    body = struct.pack(">I", len(tags)) + table + data
    header = (
        struct.pack(">I", 128 + len(body))
        + b"\0" * 4
        + bytes([2, 0x10, 0, 0])
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + b"".join(s15_fixed16(value) for value in (0.9642, 1.0, 0.8249))
        + b"\0" * 48
    )
    return header + body


def test_embedded_colour_profile_is_converted_to_srgb(visit):
    srgb_red, srgb_green, srgb_blue = SRGB_PRIMARIES_D50
    # In this profile the first channel is sRGB's green primary: a "red" pixel is really green.
    swapped = rgb_matrix_icc_profile(srgb_green, srgb_red, srgb_blue)
    photo = ingest_ok(visit, encode(Image.new("RGB", (80, 80), (255, 0, 0)), "PNG", icc_profile=swapped))
    stored = stored_image(photo)
    assert "icc_profile" not in stored.info
    assert np.abs(np.asarray(stored)[40, 40].astype(int) - (0, 255, 0)).max() <= 2
    event = AuditEvent.objects.get(object_type="studies.photo")
    assert event.details["colour_profile"] == "embedded profile converted to sRGB"


def test_unreadable_colour_profile_is_dropped_not_fatal(visit):
    photo = ingest_ok(visit, encode(textured_rgb(), "JPEG", icc_profile=b"not an icc profile" * 10))
    assert "icc_profile" not in stored_image(photo).info
    event = AuditEvent.objects.get(object_type="studies.photo")
    assert "unusable" in event.details["colour_profile"]


@pytest.mark.data
def test_real_face_is_stored_with_hashes_thumbnail_audit_and_job(
    visit, face_jpeg_bytes, sent_jobs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        photo = ingest_ok(visit, face_jpeg_bytes)
    assert photo.content_hash == hashlib.sha256(face_jpeg_bytes).hexdigest()
    with photo.image.open("rb") as handle:
        assert photo.image_hash == hashlib.sha256(handle.read()).hexdigest()
    assert photo.image.name.endswith(f"{photo.content_hash}.png")
    original = Image.open(io.BytesIO(face_jpeg_bytes))
    assert (photo.width, photo.height) == original.size
    assert photo.source_format == "JPEG" and photo.study == visit.subject.study
    with photo.thumbnail.open("rb") as handle:
        thumbnail = Image.open(io.BytesIO(handle.read()))
    assert thumbnail.format == "JPEG" and max(thumbnail.size) <= 512

    jobs = list(AnalysisJob.objects.filter(photo=photo))
    assert [job.kind for job in jobs] == ["landmarks"]
    assert sent_jobs == jobs
    event = AuditEvent.objects.get(object_type="studies.photo", object_id=str(photo.pk))
    assert event.action == "create" and event.actor == visit.uploader
    for stored_text in (photo.image.name, photo.thumbnail.name, event.summary, repr(event.details)):
        assert "Jane" not in stored_text and "before" not in stored_text


@pytest.mark.data
def test_upload_streamed_to_a_temporary_file_is_accepted(visit, face_jpeg_bytes):
    upload = TemporaryUploadedFile(PATIENT_FILE_NAME, "image/jpeg", len(face_jpeg_bytes), None)
    upload.write(face_jpeg_bytes)
    upload.seek(0)
    photo = photo_upload(visit=visit, view="frontal", upload=upload, uploaded_by=visit.uploader)
    assert photo.content_hash == hashlib.sha256(face_jpeg_bytes).hexdigest()


# --- valid files the landmark job will judge (no face, two faces, a profile) ----------------------


def test_photo_without_a_face_is_accepted(visit, png_bytes):
    photo = ingest_ok(visit, png_bytes((256, 256)))
    assert AnalysisJob.objects.filter(photo=photo, kind="landmarks").exists()


@pytest.mark.data
def test_photo_with_two_faces_is_accepted(visit, face_photo_paths):
    left, right = (Image.open(path).convert("RGB") for path in face_photo_paths[:2])
    pair = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), (255, 255, 255))
    pair.paste(left, (0, 0))
    pair.paste(right, (left.width, 0))
    photo = ingest_ok(visit, encode(pair, "JPEG", quality=92))
    assert (photo.width, photo.height) == pair.size
    assert AnalysisJob.objects.filter(photo=photo, kind="landmarks").exists()


@pytest.mark.data
def test_profile_face_is_accepted(visit, data_dir):
    profiles = sorted((data_dir / "fasseg" / "multipose" / "train" / "images").glob("+90__*.jpg"))
    if not profiles:
        pytest.skip("no FASSEG multipose +90° profile image in the data directory")
    photo = ingest_ok(visit, profiles[0].read_bytes(), view="left90")
    assert photo.view == "left90"
    assert AnalysisJob.objects.filter(photo=photo, kind="landmarks").exists()


def test_ingest_refuses_to_run_when_truncated_images_would_load(visit, monkeypatch, isolated_media_root):
    from django.core.exceptions import ImproperlyConfigured
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ImproperlyConfigured, match="LOAD_TRUNCATED_IMAGES"):
        photo_upload(
            visit=visit,
            view="frontal",
            upload=upload_of(encode(textured_rgb(), "PNG")),
            uploaded_by=visit.uploader,
        )
    assert_nothing_left(isolated_media_root)
