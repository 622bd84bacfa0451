"""Create a demo admin and a demo study if they are absent, and say how to log in.

For `make run` on a developer's or evaluator's machine: it never overwrites an existing account's
password and creates no photos (photos are patient data and are uploaded by users).
"""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from webapp.analysis.kinds import untrained_kinds
from webapp.studies.models import AnalysisKind, PhotoView, Study
from webapp.studies.services import study_create

DEMO_STUDY = "Demo study: filler injections"
DEMO_PROTOCOL = (
    "Demonstration study. Standardised photos at baseline (pre) and week 12 (post): "
    "frontal, left and right 45°. "
    "Subjects are identified by pseudonymous codes only."
)


class Command(BaseCommand):
    help = "Create the demo admin account and demo study if they do not exist."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        username = os.environ.get("FACET_DEMO_ADMIN", "admin")
        password = os.environ.get("FACET_DEMO_PASSWORD", "facet-demo")
        user_model = get_user_model()
        admin = user_model.objects.filter(username=username).first()
        if admin is None:
            admin = user_model.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(f"Created the demo admin {username!r}.")
            password_hint = password
        else:
            password_hint = "(unchanged: the account already existed)"
        if not Study.objects.filter(name=DEMO_STUDY).exists():
            study_create(
                name=DEMO_STUDY,
                creator=admin,
                protocol=DEMO_PROTOCOL,
                required_views=[PhotoView.FRONTAL, PhotoView.LEFT_45, PhotoView.RIGHT_45],
                analyses=[kind for kind in AnalysisKind.values if kind not in untrained_kinds()],
            )
            self.stdout.write(f"Created the study {DEMO_STUDY!r} with {username!r} as coordinator.")
        address = (
            f"http://{os.environ.get('FACET_HOST', '127.0.0.1')}:{os.environ.get('FACET_PORT', '8000')}/"
        )
        self.stdout.write(
            self.style.SUCCESS(f"Log in at {address} as {username!r} with password {password_hint}")
        )
