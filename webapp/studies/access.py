"""Who may do what in a study.

Access is per study: a user sees a study only through a membership (or as a site admin). An object
outside the user's studies answers exactly as an id that does not exist (`not_found`: the same 404 and
the same message, "No such photo."), so that nothing, not even an object's existence, leaks to
outsiders; a member who lacks a capability gets 403. Every refusal is audited as "denied"
(`audit_denied`, rate-limited per user so that a scanner cannot flood the trail).
"""

from enum import StrEnum

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from webapp.audit.services import audit_denied
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


def may_create_studies(user: User) -> bool:
    """FACET_STUDY_CREATORS: "everyone" (any active user), or "permitted" (site admins, and users a site
    admin allowed on the Users page: the `studies.add_study` permission)."""
    if not (user.is_authenticated and user.is_active):
        return False
    if settings.FACET_STUDY_CREATORS == "everyone" or is_site_admin(user):
        return True
    return user.has_perm("studies.add_study")


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


def not_found(user: User, what: str, object_id: int | str | None, *, study: Study | None = None) -> Http404:
    """The one answer for a missing `what` and for one outside the user's studies (audited); raise it."""
    audit_denied(
        actor=user,
        object_type=what,
        object_id=object_id,
        study_id=study.pk if study is not None else None,
        reason="outside the user's studies" if study is not None else "no such id",
    )
    return Http404(f"No such {what}.")


def require(
    user: User,
    study: Study,
    capability: Capability,
    *,
    what: str = "study",
    object_id: int | str | None = None,
) -> None:
    """Raise `not_found` (404) for outsiders and PermissionDenied for members without the capability.

    `what` and `object_id` name the object asked for, so that an outsider's 404 says what a missing
    id's 404 says ("No such photo.", not "No such study.")."""
    granted = capabilities(user, study)
    if Capability.VIEW not in granted:
        raise not_found(user, what, study.pk if object_id is None else object_id, study=study)
    if capability not in granted:
        audit_denied(
            actor=user,
            object_type=what,
            object_id=study.pk if object_id is None else object_id,
            study_id=study.pk,
            reason=f"the user's role lacks {capability.value}",
        )
        raise PermissionDenied(f"Your role in this study does not allow this ({capability.value}).")
