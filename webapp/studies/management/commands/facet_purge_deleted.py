"""Purge records deleted more than FACET_DELETED_RETENTION_DAYS ago (run daily, e.g. from cron)."""

from django.conf import settings
from django.core.management.base import BaseCommand

from webapp.studies.records import purge_deleted


class Command(BaseCommand):
    help = (
        "Delete for good the subjects, visits and photos soft-deleted more than "
        "FACET_DELETED_RETENTION_DAYS ago, with their analyses and stored files; each one audited."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be purged.")

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        report = purge_deleted(dry_run=dry_run)
        verb = "Would purge" if dry_run else "Purged"
        self.stdout.write(
            f"{verb} {report.subjects} subject(s), {report.visits} visit(s) and {report.photos} photo(s) "
            f"deleted more than {settings.FACET_DELETED_RETENTION_DAYS} days ago."
        )
