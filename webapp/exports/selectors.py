"""Reads of the study's background exports, access-checked: whoever may export the study may follow
and download its exports."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from webapp.exports.models import StudyExport
from webapp.studies.access import Capability, not_found, require
from webapp.studies.models import Study


def get_export(user: AbstractBaseUser | AnonymousUser, export_id: int) -> StudyExport:
    """The export, if ``user`` may export its study: the one "No such export." 404 for a missing id and
    for outsiders, 403 for members without the export right (both audited)."""
    export = StudyExport.objects.select_related("study").filter(pk=export_id).first()
    if export is None:
        raise not_found(user, "export", export_id)
    require(user, export.study, Capability.EXPORT, what="export", object_id=export_id)
    return export


RECENT_EXPORTS = 10


def recent_exports(study: Study) -> list[StudyExport]:
    """The study's latest background exports, newest first."""
    return list(StudyExport.objects.filter(study=study).order_by("-created_at", "-pk")[:RECENT_EXPORTS])
