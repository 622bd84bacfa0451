"""Changes to studies, memberships, subjects, visits and comparisons. Each one is audited."""

import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record, field_changes, snapshot
from webapp.studies.catalogue import untrained_kinds
from webapp.studies.models import Comparison, Role, Study, StudyMembership, Subject, Visit


@transaction.atomic
def study_create(
    *,
    name: str,
    creator: AbstractBaseUser,
    protocol: str = "",
    required_views: list[str] | None = None,
    analyses: list[str] | None = None,
    request: HttpRequest | None = None,
) -> Study:
    """Create a study; its creator becomes its first coordinator."""
    study = Study(name=name.strip(), protocol=protocol, created_by=creator)
    if required_views is not None:
        study.required_views = required_views
    if analyses is not None:
        _ensure_new_analyses_can_run(study, analyses)
        study.analyses = analyses
    study.full_clean()
    study.save()
    StudyMembership.objects.create(study=study, user=creator, role=Role.COORDINATOR)
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Created study {study.name!r}",
        actor=creator,
        target=study,
        request=request,
    )
    return study


@transaction.atomic
def study_update(
    *, study: Study, actor: AbstractBaseUser, request: HttpRequest | None = None, **fields: object
) -> Study:
    allowed = {
        "name",
        "protocol",
        "required_views",
        "analyses",
        "zones_of_interest",
        "normality_region",
        "force_zone_baseline",
        "arms",
        "ipd_mm",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"Cannot change {', '.join(sorted(unknown))} of a study.")
    if "analyses" in fields:
        _ensure_new_analyses_can_run(study, fields["analyses"])
    before = snapshot(study, list(fields))
    for field, value in fields.items():
        setattr(study, field, value)
    changes = field_changes(before, snapshot(study, list(fields)))
    if changes:
        study.full_clean()
        study.save(update_fields=list(changes))
        audit_record(
            action=AuditAction.UPDATE,
            summary=f"Changed study {study.name!r}",
            actor=actor,
            target=study,
            request=request,
            details={"changes": changes},
        )
    return study


def _ensure_new_analyses_can_run(study: Study, analyses: object) -> None:
    """Refuse to add an analysis whose model is untrained: every job of it would fail."""
    added = set(analyses or []) - set(study.analyses)
    blocked = untrained_kinds()
    refused = [blocked[kind] for kind in sorted(added) if kind in blocked]
    if refused:
        raise ValidationError({"analyses": refused})


@transaction.atomic
def membership_set(
    *,
    study: Study,
    user: AbstractBaseUser,
    role: str,
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> StudyMembership:
    """Add `user` to the study with `role`, or change their role."""
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}.")
    current = StudyMembership.objects.filter(study=study, user=user).first()
    if current and current.role == Role.COORDINATOR and role != Role.COORDINATOR:
        _ensure_another_coordinator(study, current)
    membership, created = StudyMembership.objects.update_or_create(
        study=study, user=user, defaults={"role": role}
    )
    audit_record(
        action=AuditAction.CREATE if created else AuditAction.UPDATE,
        summary=f"{user.get_username()} is {Role(role).label} in {study.name!r}",
        actor=actor,
        target=membership,
        study_id=study.pk,
        request=request,
        details={
            "user": user.get_username(),
            "role": role,
            "changes": {"role": {"old": current.role if current else None, "new": role}},
        },
    )
    return membership


def _ensure_another_coordinator(study: Study, leaving: StudyMembership) -> None:
    if not study.memberships.filter(role=Role.COORDINATOR).exclude(pk=leaving.pk).exists():
        raise ValidationError("A study needs at least one coordinator; appoint another one first.")


@transaction.atomic
def membership_remove(
    *, membership: StudyMembership, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> None:
    study = membership.study
    username = membership.user.get_username()
    if membership.role == Role.COORDINATOR:
        _ensure_another_coordinator(study, membership)
    membership.delete()
    audit_record(
        action=AuditAction.DELETE,
        summary=f"Removed {username} from {study.name!r}",
        actor=actor,
        object_type="studies.studymembership",
        study_id=study.pk,
        request=request,
        details={"user": username},
    )


@transaction.atomic
def subject_create(
    *, study: Study, code: str, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> Subject:
    subject = Subject(study=study, code=code.strip())
    subject.full_clean()
    subject.save()
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Added subject {subject.code}",
        actor=actor,
        target=subject,
        request=request,
    )
    return subject


@transaction.atomic
def visit_create(
    *,
    subject: Subject,
    label: str,
    role: str,
    actor: AbstractBaseUser,
    date: datetime.date | None = None,
    request: HttpRequest | None = None,
) -> Visit:
    visit = Visit(subject=subject, label=label.strip(), role=role, date=date)
    visit.full_clean()
    visit.save()
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Added visit {visit.label!r} of {subject.code}",
        actor=actor,
        target=visit,
        request=request,
    )
    return visit


@transaction.atomic
def comparison_create(
    *, pre_visit: Visit, post_visit: Visit, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> Comparison:
    existing = Comparison.objects.filter(pre_visit=pre_visit, post_visit=post_visit).first()
    if existing:
        return existing
    comparison = Comparison(
        subject=pre_visit.subject, pre_visit=pre_visit, post_visit=post_visit, created_by=actor
    )
    comparison.full_clean()
    comparison.save()
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Created comparison {comparison}",
        actor=actor,
        target=comparison,
        request=request,
    )
    return comparison
