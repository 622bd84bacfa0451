"""Create a demo admin and a demo study with pre/post photos if they are absent, and say how to log in.

For `make run` on a developer's or evaluator's machine. It never overwrites an existing account's
password. The photos are faces that their subjects published for research: the Face Research Lab
London Set (DeBruine & Jones, CC-BY 4.0) from the data directory, a neutral photo as "pre" and a
smiling one as "post". Without the data directory the study gets a clearly labelled synthetic set
(drawn shapes, no real face). Every photo goes through the normal ingest, so the study's analyses are
queued for the worker.
"""

import io
import os
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction
from PIL import Image, ImageDraw

from ml.config import data_dir_or_none
from webapp.analysis.kinds import untrained_kinds
from webapp.analysis.services import photo_upload
from webapp.studies.models import AnalysisKind, Photo, PhotoView, Study, VisitRole
from webapp.studies.services import comparison_create, study_create, subject_create, visit_create

DEMO_STUDY = "Demo study: filler injections"
DEMO_PROTOCOL = (
    "Demonstration study. Standardised photos at baseline (pre) and week 12 (post): "
    "frontal, left and right 45°. "
    "Subjects are identified by pseudonymous codes only."
)
LONDON_CREDIT = (
    "Demo photos: Face Research Lab London Set, DeBruine L. & Jones B. (2017), figshare, CC-BY 4.0. "
    "The 'pre' photo is the neutral expression and the 'post' photo the smiling one of the same person: "
    "a stand-in for a treatment, not a treatment."
)
SYNTHETIC_NOTE = (
    "Demo photos: SYNTHETIC drawings made by `manage.py facet_demo` (the face data directory was absent). "
    "They are not faces; landmark analyses report that no face was found."
)
DEMO_FACES = 3


def london_pairs(data_dir: Path | None) -> list[tuple[str, Path, Path]]:
    """(face id, neutral photo, smiling photo) for the first DEMO_FACES faces that have both."""
    if data_dir is None:
        return []
    folder = data_dir / "london"
    pairs = []
    for neutral in sorted((folder / "neutral").glob("*.jpg")):
        smiling = folder / "smiling" / neutral.name
        if smiling.exists():
            pairs.append((neutral.stem, neutral, smiling))
        if len(pairs) == DEMO_FACES:
            break
    return pairs


def synthetic_photo(number: int, smiling: bool) -> bytes:
    """A labelled drawing (not a face), so the demo study has something to show without the data set."""
    image = Image.new("RGB", (600, 800), (214, 196, 180))
    draw = ImageDraw.Draw(image)
    draw.ellipse((120, 120, 480, 640), fill=(226, 190, 160), outline=(120, 90, 70), width=4)
    for x in (220, 380):
        draw.ellipse((x - 30, 330, x + 30, 360), fill=(255, 255, 255), outline=(60, 40, 30), width=3)
    mouth = (230, 500, 370, 560 if smiling else 520)
    draw.arc(mouth, 0 if smiling else 10, 180 if smiling else 170, fill=(150, 60, 60), width=6)
    draw.text(
        (20, 20),
        f"SYNTHETIC DEMO IMAGE {number} ({'post' if smiling else 'pre'}), NOT A FACE",
        fill=(0, 0, 0),
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Command(BaseCommand):
    help = "Create the demo admin account and the demo study with pre/post photos, if they do not exist."

    def handle(self, *args, **options) -> None:
        username = os.environ.get("FACET_DEMO_ADMIN", "admin")
        password = os.environ.get("FACET_DEMO_PASSWORD", "facet-demo")
        with transaction.atomic():
            user_model = get_user_model()
            admin = user_model.objects.filter(username=username).first()
            if admin is None:
                admin = user_model.objects.create_superuser(username=username, email="", password=password)
                self.stdout.write(f"Created the demo admin {username!r}.")
                password_hint = password
            else:
                password_hint = "(unchanged: the account already existed)"
            study = Study.objects.filter(name=DEMO_STUDY).first()
            if study is None:
                study = study_create(
                    name=DEMO_STUDY,
                    creator=admin,
                    protocol=DEMO_PROTOCOL,
                    required_views=[PhotoView.FRONTAL, PhotoView.LEFT_45, PhotoView.RIGHT_45],
                    analyses=[kind for kind in AnalysisKind.values if kind not in untrained_kinds()],
                )
                self.stdout.write(f"Created the study {DEMO_STUDY!r} with {username!r} as coordinator.")
        if not Photo.objects.filter(study=study).exists():
            self._add_photos(study, admin)
        address = (
            f"http://{os.environ.get('FACET_HOST', '127.0.0.1')}:{os.environ.get('FACET_PORT', '8000')}/"
        )
        self.stdout.write(
            self.style.SUCCESS(f"Log in at {address} as {username!r} with password {password_hint}")
        )

    def _add_photos(self, study: Study, admin) -> None:
        pairs = london_pairs(data_dir_or_none())
        if pairs:
            photos = [
                (f"LDN-{face}", neutral.read_bytes(), smiling.read_bytes())
                for face, neutral, smiling in pairs
            ]
            note = LONDON_CREDIT
        else:
            photos = [
                (f"SYN-{number:03d}", synthetic_photo(number, False), synthetic_photo(number, True))
                for number in range(1, DEMO_FACES + 1)
            ]
            note = SYNTHETIC_NOTE
        study.protocol = f"{DEMO_PROTOCOL}\n\n{note}"
        study.save(update_fields=["protocol"])
        for code, pre_bytes, post_bytes in photos:
            subject = subject_create(study=study, code=code, actor=admin)
            visits = []
            for label, role, content in (
                ("baseline", VisitRole.PRE, pre_bytes),
                ("week 12", VisitRole.POST, post_bytes),
            ):
                visit = visit_create(subject=subject, label=label, role=role, actor=admin)
                upload = SimpleUploadedFile(f"{code}-{label}.img", content)
                photo_upload(visit=visit, view=PhotoView.FRONTAL, upload=upload, uploaded_by=admin)
                visits.append(visit)
            comparison_create(pre_visit=visits[0], post_visit=visits[1], actor=admin)
        self.stdout.write(
            f"Added {len(photos)} demo subjects with pre/post photos; their analyses are queued. {note}"
        )
