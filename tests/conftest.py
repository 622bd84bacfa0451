"""Fixtures shared by the whole suite: the data directory, real face photos, users and a study."""

import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "False")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """One torch thread, as every worker process runs (workers/celery.py): with torch's default of one
    thread per core, anything else on the two cores makes each parallel op wait for a descheduled thread
    (the study regressor fit test: 7 s with one thread, 120 s with two beside one other busy process)."""
    from ml.config import apply_torch_threads

    apply_torch_threads(default=1)


DATA_ABSENT = "the face data directory (FACET_DATA_DIR, default ../shared/data) is absent"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from ml.config import data_dir_or_none

    path = data_dir_or_none()
    if path is None:
        pytest.skip(DATA_ABSENT)
    return path


@pytest.fixture(scope="session")
def face_photo_path(data_dir: Path) -> Path:
    """A real frontal studio face (FASSEG frontal), about 370×512."""
    return data_dir / "fasseg" / "frontal" / "train" / "images" / "1.jpg"


@pytest.fixture(scope="session")
def face_photo_paths(data_dir: Path) -> list[Path]:
    """Real frontal faces, pre/post stand-ins: FASSEG frontal faces in a fixed order."""
    folder = data_dir / "fasseg" / "frontal" / "train" / "images"
    return sorted(folder.glob("*.jpg"), key=lambda path: int(path.stem))


@pytest.fixture(scope="session")
def face_jpeg_bytes(face_photo_path: Path) -> bytes:
    return face_photo_path.read_bytes()


@pytest.fixture
def make_user(django_user_model) -> Callable:
    counter = iter(range(1, 10_000))

    def make(username: str | None = None, *, staff: bool = False, password: str = "correct horse battery"):
        username = username or f"user{next(counter)}"
        return django_user_model.objects.create_user(
            username=username, password=password, email=f"{username}@example.org", is_staff=staff
        )

    return make


@pytest.fixture
def study_with_members(make_user):
    """A study with one member of each role, and a stranger who belongs to another study."""
    from webapp.studies.models import Role
    from webapp.studies.services import membership_set, study_create

    coordinator = make_user("coordinator")
    study = study_create(
        name="Filler study", creator=coordinator, protocol="Hyaluronic acid filler, 12 weeks."
    )
    members = {"coordinator": coordinator}
    for role in (Role.CLINICIAN, Role.RATER, Role.MONITOR):
        user = make_user(role.value)
        membership_set(study=study, user=user, role=role, actor=coordinator)
        members[role.value] = user
    outsider = make_user("outsider")
    other_study = study_create(name="Other study", creator=outsider)
    members["outsider"] = outsider
    return {"study": study, "other_study": other_study, **members}


@pytest.fixture
def png_bytes() -> Callable[..., bytes]:
    """Encode a synthetic image (no face) as PNG, for inputs that need no real face."""
    from PIL import Image

    def encode(size: tuple[int, int] = (256, 256), mode: str = "RGB", color=(180, 150, 130)) -> bytes:
        buffer = io.BytesIO()
        Image.new(mode, size, color).save(buffer, format="PNG")
        return buffer.getvalue()

    return encode


@pytest.fixture(autouse=True)
def isolated_media_root(settings, tmp_path_factory):
    """Every test writes photos to its own media folder, never to var/media."""
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
    return settings.MEDIA_ROOT


@pytest.fixture
def make_photo(png_bytes):
    """Create a Photo row with a small stored PNG directly (no ingest, no job), for tests of other layers."""
    import hashlib

    from django.core.files.base import ContentFile

    from webapp.studies.models import Photo, PhotoView, Subject, Visit, VisitRole

    counter = iter(range(1, 10_000))

    def make(
        study,
        *,
        subject_code: str = "S001",
        visit_label: str = "baseline",
        role: str = VisitRole.PRE,
        view: str = PhotoView.FRONTAL,
        uploaded_by=None,
    ) -> Photo:
        subject, _ = Subject.objects.get_or_create(study=study, code=subject_code)
        visit, _ = Visit.objects.get_or_create(subject=subject, label=visit_label, defaults={"role": role})
        content = png_bytes(color=(next(counter) % 256, 120, 110))
        digest = hashlib.sha256(content).hexdigest()
        photo = Photo(
            study=study,
            visit=visit,
            view=view,
            content_hash=digest,
            image_hash=digest,
            source_format="PNG",
            width=256,
            height=256,
            uploaded_by=uploaded_by,
        )
        photo.image.save("photo.png", ContentFile(content), save=False)
        photo.thumbnail.save("thumb.jpg", ContentFile(content), save=False)
        photo.save()
        return photo

    return make


@pytest.fixture(scope="session", autouse=True)
def plain_http():
    """The test client and the live test server speak plain HTTP; production is HTTPS-only by default
    (tests/webapp/test_security_headers.py checks those settings in a process of their own). Session-wide,
    so that it holds before the live server builds its middleware (SecurityMiddleware reads it once)."""
    from django.test import override_settings

    with override_settings(
        SECURE_SSL_REDIRECT=False,
        SESSION_COOKIE_SECURE=False,
        CSRF_COOKIE_SECURE=False,
        SECURE_HSTS_SECONDS=0,
    ):
        yield


@pytest.fixture(autouse=True)
def test_friendly_settings(settings):
    """Pages render without `collectstatic`'s manifest, and users are created with a fast hasher."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Tasks run eagerly inside the test's transaction, which a heartbeat thread (its own connection)
    # cannot see; real workers (integration tests) beat with their own settings.
    settings.FACET_RUN_HEARTBEAT_SECONDS = 3600


@pytest.fixture
def mark_untrained(monkeypatch):
    """Make registered ml models look untrained, as on a checkout without their weights."""
    from ml.registry import registry

    def mark(*names: str) -> None:
        for name in names:
            monkeypatch.setattr(registry.spec(name), "trained", False)

    return mark


@pytest.fixture
def sent_runs(monkeypatch) -> list:
    """Replace the broker: the runs (AnalysisJob, TrainingJob, Campaign ...) that would have been sent to a
    worker, in order. The send happens when the transaction commits (in `db` tests: only inside
    `django_capture_on_commit_callbacks(execute=True)`)."""
    sent: list = []

    def send(run, countdown=None) -> bool:
        sent.append(run)
        return True

    monkeypatch.setattr("webapp.runs.dispatch.send_run", send)
    return sent


@pytest.fixture
def measured_noise_floors(monkeypatch, tmp_path):
    """Install a noise-floor file (TEST DATA): ``install(floors, wrinkle_weights_sha256)`` with floors
    ``{measure: repeatability coefficient}``, measured (as it says) with that wrinkle model."""
    from ml.measures import catalogue

    def install(floors: dict[str, float], wrinkle_weights_sha256: str) -> None:
        rows = {
            key: {"within_sd": value / 2.77, "repeatability_coefficient": value, "mean": 1.0}
            | {"between_photo_sd": 1.0}
            for key, value in floors.items()
        }
        document = {"models": {"wrinkles": {"weights_sha256": wrinkle_weights_sha256}}, "measures": rows}
        path = tmp_path / "noise_floor.json"
        path.write_text(json.dumps(document))
        monkeypatch.setattr(catalogue, "NOISE_FLOOR_FILE", path)
        catalogue.noise_floors.cache_clear()
        catalogue.noise_floor_weights_sha256.cache_clear()

    yield install
    catalogue.noise_floors.cache_clear()
    catalogue.noise_floor_weights_sha256.cache_clear()
