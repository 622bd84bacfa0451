"""D16: uploads the platform cannot keep whole are refused with the true reason, through the API and
the page alike: a PNG whose text metadata unpacks to 50 MB, a multi-page TIFF, two files in one
request, and a 5,000-character file name (over Django's limit on a part's headers)."""

import io
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from webapp.studies.models import Photo, Subject, Visit

pytestmark = pytest.mark.django_db


@pytest.fixture
def visit(study_with_members):
    subject = Subject.objects.create(study=study_with_members["study"], code="S-1")
    return Visit.objects.create(subject=subject, label="baseline", role="pre")


def png_with_compressed_text(megabytes: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (128, 128), (120, 100, 90)).save(buffer, "PNG")
    png = buffer.getvalue()
    payload = b"Comment\x00\x00" + zlib.compress(b"a" * megabytes * 2**20, 9)
    chunk = (
        struct.pack(">I", len(payload)) + b"zTXt" + payload + struct.pack(">I", zlib.crc32(b"zTXt" + payload))
    )
    return png[:33] + chunk + png[33:]  # after the 8-byte signature and the IHDR chunk


def two_page_tiff() -> bytes:
    buffer = io.BytesIO()
    first, second = Image.new("RGB", (128, 128), (10, 20, 30)), Image.new("RGB", (128, 128), (200, 0, 0))
    first.save(buffer, "TIFF", save_all=True, append_images=[second])
    return buffer.getvalue()


def api_upload(user, visit, *files: SimpleUploadedFile):
    client = APIClient()
    client.force_authenticate(user)
    body = {"visit": visit.pk, "view": "frontal", "file": list(files) if len(files) > 1 else files[0]}
    return client.post("/api/photos/", body, format="multipart")


def page_upload(user, visit, *files: SimpleUploadedFile):
    client = Client()
    client.force_login(user)
    body = {"view": "frontal", "file": list(files) if len(files) > 1 else files[0]}
    return client.post(reverse("studies:photo_upload", args=[visit.pk]), body)


def message_of(response) -> tuple[str, str]:
    body = response.json()
    return (body["file"][0], body["code"]) if "file" in body else (body["error"], body["code"])


@pytest.mark.parametrize("upload", [api_upload, page_upload])
def test_a_png_with_a_huge_text_chunk_is_refused_for_its_metadata(upload, study_with_members, visit):
    file = SimpleUploadedFile("face.png", png_with_compressed_text(50), "image/png")
    response = upload(study_with_members["clinician"], visit, file)
    message, code = message_of(response)
    assert response.status_code == 400 and code == "metadata_too_large"
    assert "metadata" in message and "damaged" not in message
    assert not Photo.objects.exists()


@pytest.mark.parametrize("upload", [api_upload, page_upload])
def test_a_multi_page_tiff_is_refused_saying_so(upload, study_with_members, visit):
    response = upload(study_with_members["clinician"], visit, SimpleUploadedFile("scan.tif", two_page_tiff()))
    message, code = message_of(response)
    assert response.status_code == 400 and code == "several_images" and "2 pages" in message
    assert not Photo.objects.exists()


@pytest.mark.parametrize("upload", [api_upload, page_upload])
def test_two_files_in_one_request_are_refused_not_half_kept(upload, study_with_members, visit, png_bytes):
    files = [SimpleUploadedFile(f"{n}.png", png_bytes(color=(n, 9, 9)), "image/png") for n in (1, 2)]
    response = upload(study_with_members["clinician"], visit, *files)
    message, code = message_of(response)
    assert response.status_code == 400 and code == "several_files" and "2 files" in message
    assert not Photo.objects.exists()


def multipart_with_file_name(file_name: str, content: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    """A multipart body written by hand: Django's test client would cut the name to 255 characters."""
    boundary = "facetprobeboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("api", [True, False])
def test_a_5000_character_file_name_gets_a_clear_json_400(api, study_with_members, visit, png_bytes):
    fields = {"visit": str(visit.pk), "view": "frontal"} if api else {"view": "frontal"}
    body, content_type = multipart_with_file_name("a" * 5000 + ".png", png_bytes(), fields)
    client = Client(raise_request_exception=False)
    client.force_login(study_with_members["clinician"])
    url = "/api/photos/" if api else reverse("studies:photo_upload", args=[visit.pk])
    response = client.post(url, body, content_type=content_type, HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    message = response.json()["detail" if api else "error"]
    assert "file name" in message and "rename" in message
    assert not Photo.objects.exists()
