"""Purge built exports past FACET_EXPORT_RETENTION_HOURS: what the Celery beat task does, by hand or cron."""

from django.conf import settings
from django.core.management.base import BaseCommand

from webapp.exports.services import purge_expired_exports


class Command(BaseCommand):
    help = (
        "Delete the files of the study exports built more than FACET_EXPORT_RETENTION_HOURS ago and mark "
        "them expired; each one audited."
    )

    def handle(self, *args, **options) -> None:
        purged = purge_expired_exports(via="cli")
        self.stdout.write(
            f"Purged {purged} export(s) built more than {settings.FACET_EXPORT_RETENTION_HOURS} hours ago."
        )
