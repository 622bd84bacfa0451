"""Reads of the study's background exports, access-checked: whoever may export the study may follow
and download its exports."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from webapp.exports.models import StudyExport
from webapp.studies.access import ROLE_CAPABILITIES, Capability, not_found, require
from webapp.studies.models import Study, StudyMembership
from webapp.webutils import is_site_admin


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


def exports_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[StudyExport]:
    """Exports of the studies in which ``user`` may export (site admins: all)."""
    if is_site_admin(user):
        return StudyExport.objects.all()
    if not user.is_authenticated:
        return StudyExport.objects.none()
    roles = [role for role, granted in ROLE_CAPABILITIES.items() if Capability.EXPORT in granted]
    studies = StudyMembership.objects.filter(user=user, role__in=roles).values("study_id")
    return StudyExport.objects.filter(study_id__in=studies)
