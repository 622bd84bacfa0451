"""Issue 16 item 8: at least 25 kinds of bad input, each through the API and through the upload form,
each answered with a clear message (a sentence, no exception class name, no HTML page, no 5xx), and
nothing partial left: no photo row, no job, no stored file, no "created" audit event."""

import io
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from webapp.analysis.models import AnalysisJob
from webapp.audit.models import AuditAction, AuditEvent
from webapp.studies.models import Photo, Subject, Visit

pytestmark = pytest.mark.django_db

# Exception class names (NoFaceError:, ValueError:, UnidentifiedImageError …) never reach a user.
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]+(Error|Exception)\b")


def image_bytes(size=(256, 256), fmt="PNG", mode="RGB", **save) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (150, 120, 100) if mode == "RGB" else 128).save(buffer, fmt, **save)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a size far beyond the pixel limit (a decompression bomb's header)."""
    real = image_bytes((8, 8))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    ihdr = struct.pack(">I", 13) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return real[:8] + ihdr + real[33:]


def png_with_compressed_text(megabytes: int) -> bytes:
    png = image_bytes((128, 128))
    payload = b"Comment\x00\x00" + zlib.compress(b"a" * megabytes * 2**20, 9)
    chunk = (
        struct.pack(">I", len(payload)) + b"zTXt" + payload + struct.pack(">I", zlib.crc32(b"zTXt" + payload))
    )
    return png[:33] + chunk + png[33:]


def two_page_tiff() -> bytes:
    buffer = io.BytesIO()
    pages = [Image.new("RGB", (128, 128), colour) for colour in ((10, 20, 30), (200, 0, 0))]
    pages[0].save(buffer, "TIFF", save_all=True, append_images=pages[1:])
    return buffer.getvalue()


def animated_webp() -> bytes:
    buffer = io.BytesIO()
    frames = [Image.new("RGB", (128, 128), colour) for colour in ((0, 0, 0), (255, 255, 255))]
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


@dataclass
class Case:
    """One bad request: the file(s) and fields sent; `visit` chooses which visit the request names."""

    files: list[tuple[str, bytes]] = field(default_factory=lambda: [("face.png", image_bytes())])
    view: str | None = "frontal"
    visit: str = "own"  # own, missing, foreign, deleted, text
    # The form posts to /visits/<id>/photos/, so a visit id that is not a number is an API-only case.
    channels: tuple[str, ...] = ("API", "form")


JPEG = image_bytes(fmt="JPEG")
CASES: dict[str, Case] = {
    "no file": Case(files=[]),
    "empty file": Case(files=[("empty.jpg", b"")]),
    "plain text": Case(files=[("notes.jpg", b"Patient notes, not a photo.\n" * 20)]),
    "PDF": Case(files=[("scan.pdf", b"%PDF-1.7\n1 0 obj<<>>endobj\n" + b"0" * 500)]),
    "ZIP archive": Case(files=[("photos.zip", b"PK\x03\x04" + b"\x00" * 500)]),
    "HTML disguised as JPEG": Case(files=[("face.jpg", b"<html><script>alert(1)</script></html>")]),
    "SVG": Case(files=[("face.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>')]),
    "GIF": Case(files=[("face.gif", image_bytes(fmt="GIF", mode="L"))]),
    "BMP": Case(files=[("face.bmp", image_bytes(fmt="BMP"))]),
    "HEIC": Case(files=[("face.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 500)]),
    "AVIF": Case(files=[("face.avif", b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1avif" + b"\x00" * 500)]),
    "truncated JPEG": Case(files=[("face.jpg", JPEG[: len(JPEG) // 3])]),
    "JPEG header then noise": Case(files=[("face.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)]),
    "truncated PNG": Case(files=[("face.png", image_bytes()[:60])]),
    "PNG too small (10 px)": Case(files=[("tiny.png", image_bytes((10, 10)))]),
    "PNG header claiming 2 gigapixels": Case(files=[("bomb.png", png_claiming(50_000, 40_000))]),
    "PNG with 50 MB of text metadata": Case(files=[("meta.png", png_with_compressed_text(50))]),
    "multi-page TIFF": Case(files=[("scan.tif", two_page_tiff())]),
    "animated WebP": Case(files=[("clip.webp", animated_webp())]),
    "two files in one request": Case(
        files=[("a.png", image_bytes((300, 300))), ("b.png", image_bytes((301, 300)))]
    ),
    "file over the size limit": Case(files=[("big.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (2 * 2**20))]),
    "unknown view": Case(view="upside-down"),
    "no view": Case(view=None),
    "visit that does not exist": Case(visit="missing"),
    "visit of another study": Case(visit="foreign"),
    "deleted visit": Case(visit="deleted"),
    "visit id that is not a number": Case(visit="text", channels=("API",)),
}


@pytest.fixture
def visits(study_with_members, make_photo):
    from webapp.studies.records import record_delete

    subject = Subject.objects.create(study=study_with_members["study"], code="BAD-1")
    own = Visit.objects.create(subject=subject, label="baseline", role="pre")
    deleted = Visit.objects.create(subject=subject, label="removed", role="post")
    record_delete(record=deleted, reason="entered twice", actor=study_with_members["coordinator"])
    other = Subject.objects.create(study=study_with_members["other_study"], code="OTHER-1")
    foreign = Visit.objects.create(subject=other, label="baseline", role="pre")
    return {
        "own": own.pk,
        "deleted": deleted.pk,
        "foreign": foreign.pk,
        "missing": 987_654_321,
        "text": "abc",
    }


def send_api(client: Client, case: Case, visit_id) -> object:
    body: dict = {"visit": visit_id}
    if case.view is not None:
        body["view"] = case.view
    if case.files:
        uploads = [SimpleUploadedFile(name, content) for name, content in case.files]
        body["file"] = uploads if len(uploads) > 1 else uploads[0]
    return client.post("/api/photos/", body, HTTP_ACCEPT="application/json")


def send_form(client: Client, case: Case, visit_id) -> object:
    body: dict = {}
    if case.view is not None:
        body["view"] = case.view
    if case.files:
        uploads = [SimpleUploadedFile(name, content) for name, content in case.files]
        body["file"] = uploads if len(uploads) > 1 else uploads[0]
    url = (
        reverse("studies:photo_upload", args=[visit_id])
        if isinstance(visit_id, int)
        else (f"/visits/{visit_id}/photos/")
    )
    return client.post(url, body, HTTP_ACCEPT="application/json")


def texts(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in texts(item)]
    if isinstance(value, dict):
        return [text for key, item in value.items() if key != "code" for text in texts(item)]
    return []


SENDERS: dict[str, Callable] = {"API": send_api, "form": send_form}


def test_every_kind_of_bad_input_gets_a_clear_message_and_leaves_nothing(
    settings, study_with_members, visits, isolated_media_root
):
    settings.FACET_MAX_UPLOAD_BYTES = 2**20  # 1 MiB, so the size case stays small
    assert len(CASES) >= 25
    client = Client(raise_request_exception=False)
    client.force_login(study_with_members["clinician"])
    unclear = []
    checked = 0
    for name, case in CASES.items():
        for channel in case.channels:
            response = SENDERS[channel](client, case, visits[case.visit])
            checked += 1
            problem = None
            if not 400 <= response.status_code < 500:
                problem = f"HTTP {response.status_code}"
            elif not response["Content-Type"].startswith("application/json"):
                problem = f"not JSON ({response['Content-Type']})"
            else:
                message = " ".join(texts(response.json())).strip()
                if len(message) < 12 or not re.search(r"[a-z]{3}", message):
                    problem = f"no clear message: {response.json()!r}"
                elif CLASS_NAME.search(message) or "Traceback" in message:
                    problem = f"an exception name in {message!r}"
            if problem:
                unclear.append(f"{name} via {channel}: {problem}")
    assert unclear == [], "\n".join(unclear)
    assert not Photo.objects.exists()
    assert not AnalysisJob.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.CREATE, object_type="studies.photo").exists()
    stored = [path for path in Path(isolated_media_root).rglob("*") if path.is_file()]
    assert stored == [], f"files left behind: {stored}"
    assert checked == 2 * len(CASES) - 1
    print(
        f"{len(CASES)} kinds of bad input, {checked} requests (API and form): "
        "all refused clearly, nothing kept"
    )
