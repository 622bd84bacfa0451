"""Report stored files that no row names, and rows whose file is missing; optionally delete the former."""

import json
from datetime import timedelta

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandParser

from webapp.stored_files import find_orphans, is_referenced


class Command(BaseCommand):
    help = (
        "Compare the media storage with the database: files that no row names (orphans) and rows whose "
        "file is missing. Exits with status 1 when it finds either."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--min-age-hours",
            type=float,
            default=24.0,
            help="only files older than this count as orphans (uploads in progress write files first)",
        )
        parser.add_argument("--delete-orphans", action="store_true", help="delete the orphan files found")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **options) -> None:
        orphans, missing = find_orphans(default_storage, timedelta(hours=options["min_age_hours"]))
        deleted = []
        if options["delete_orphans"]:
            for orphan in orphans:
                if not is_referenced(default_storage, orphan.name):  # named by a row since the scan
                    default_storage.delete(orphan.name)
                    deleted.append(orphan.name)
        if options["json"]:
            report = {
                "orphan_files": [
                    {"name": o.name, "bytes": o.size, "modified": o.modified and o.modified.isoformat()}
                    for o in orphans
                ],
                "missing_files": [vars(m) | {"pk": str(m.pk)} for m in missing],
                "deleted": deleted,
            }
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(f"{len(orphans)} stored file(s) that no row names:")
            for orphan in orphans:
                self.stdout.write(f"  {orphan.name} ({orphan.size} bytes)")
            self.stdout.write(f"{len(missing)} row(s) whose file is missing:")
            for row in missing:
                self.stdout.write(f"  {row.model} {row.pk} {row.field}: {row.name}")
            if deleted:
                self.stdout.write(f"Deleted {len(deleted)} orphan file(s).")
        if (orphans and not deleted) or missing:
            raise SystemExit(1)
