"""Who may do what in a study.

Access is per study: a user sees a study only through a membership (or as a site admin). Callers
that find no membership answer 404 so that nothing, not even a study's existence, leaks to
outsiders; a member who lacks a capability gets 403.
"""

from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from webapp.studies.models import Role, Study, StudyMembership
from webapp.webutils import is_site_admin


class Capability(StrEnum):
    VIEW = "view"
    UPLOAD = "upload"
    MANAGE_SUBJECTS = "manage_subjects"
    COMPARE = "compare"
    EXPORT = "export"
    RATE = "rate"
    LABEL = "label"
    CONTROL_JOBS = "control_jobs"
    MANAGE_STUDY = "manage_study"


ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.COORDINATOR: frozenset(Capability),
    Role.CLINICIAN: frozenset(
        {
            Capability.VIEW,
            Capability.UPLOAD,
            Capability.MANAGE_SUBJECTS,
            Capability.COMPARE,
            Capability.CONTROL_JOBS,
            Capability.LABEL,
        }
    ),
    Role.RATER: frozenset({Capability.VIEW, Capability.RATE, Capability.LABEL}),
    Role.MONITOR: frozenset({Capability.VIEW}),
}

User = AbstractBaseUser | AnonymousUser


def role_in_study(user: User, study: Study) -> str | None:
    if not user.is_authenticated:
        return None
    membership = StudyMembership.objects.filter(study=study, user=user).only("role").first()
    return membership.role if membership else None


def capabilities(user: User, study: Study) -> frozenset[Capability]:
    if is_site_admin(user):
        return frozenset(Capability)
    role = role_in_study(user, study)
    return ROLE_CAPABILITIES.get(role, frozenset()) if role else frozenset()


def can(user: User, study: Study, capability: Capability) -> bool:
    return capability in capabilities(user, study)


def require(user: User, study: Study, capability: Capability) -> None:
    """Raise Http404 for outsiders and PermissionDenied for members without the capability."""
    granted = capabilities(user, study)
    if Capability.VIEW not in granted:
        raise Http404("No such study.")
    if capability not in granted:
        raise PermissionDenied(f"Your role in this study does not allow this ({capability.value}).")
