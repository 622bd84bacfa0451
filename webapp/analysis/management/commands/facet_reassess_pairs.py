"""Recompute the stored measures and comparability of comparison pairs from their photos' latest results."""

from django.core.management.base import BaseCommand, CommandError

from webapp.analysis.pairs import pairs_reassess
from webapp.studies.models import Study


class Command(BaseCommand):
    help = (
        "Reassess every living comparison pair (measures, comparability figures and warnings) from the "
        "latest results of its photos: run it after an upgrade that changes how they are computed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--study", type=int, help="Only the pairs of this study (its id).")

    def handle(self, *args, **options) -> None:
        study_id = options["study"]
        if study_id is not None and not Study.objects.filter(pk=study_id).exists():
            raise CommandError(f"There is no study {study_id}.")
        count = pairs_reassess(study_id)
        self.stdout.write(f"Reassessed {count} comparison pair(s).")
