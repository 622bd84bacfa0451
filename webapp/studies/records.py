"""Editing and deleting study records (subjects, visits, photos): every change audited with its old and
new values; deletion is reversible first (a soft delete with a reason), and final only when
`purge_deleted` runs after the retention period (FACET_DELETED_RETENTION_DAYS), taking the stored
files with the rows (webapp/stored_files.py)."""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record, field_changes, snapshot
from webapp.studies.models import Photo, PhotoView, SoftDeletable, Subject, Visit, VisitRole
from webapp.studies.signals import photo_view_changed, photos_withdrawn

MAX_REASON_LENGTH = 300


def _describe(record: SoftDeletable) -> str:
    if isinstance(record, Subject):
        return f"subject {record.code}"
    if isinstance(record, Visit):
        return f"visit {record.label!r} of {record.subject.code}"
    return f"photo {record.pk} ({record})"


def _update(
    record: models.Model,
    values: dict[str, object],
    *,
    actor: AbstractBaseUser,
    request: HttpRequest | None,
    summary: str,
) -> dict[str, dict]:
    """Set `values`, validate, save the changed fields and audit old and new values; returns the changes."""
    names = list(values)
    before = snapshot(record, names)
    for name, value in values.items():
        setattr(record, name, value)
    after = snapshot(record, names)
    changes = field_changes(before, after)
    if not changes:
        return {}
    # Only the changed fields are validated: stored rows may predate today's validators.
    others = [field.name for field in record._meta.concrete_fields if field.name not in changes]
    record.full_clean(exclude=others, validate_constraints=False)
    record.save(update_fields=[record._meta.get_field(name).attname for name in changes])
    audit_record(
        action=AuditAction.UPDATE,
        summary=summary,
        actor=actor,
        target=record,
        request=request,
        details={"changes": changes},
    )
    return changes


@transaction.atomic
def subject_update(
    *, subject: Subject, code: str, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> dict[str, dict]:
    code = code.strip()
    if Subject.objects.filter(study=subject.study, code=code).exclude(pk=subject.pk).exists():
        raise ValidationError(f"This study already has a subject {code} (perhaps among deleted records).")
    return _update(
        subject, {"code": code}, actor=actor, request=request, summary=f"Changed subject {subject.code}"
    )


def subject_attributes_set(
    *,
    subject: Subject,
    arm: str,
    sex: str,
    age_band: str,
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> dict[str, dict]:
    """Set the subject's arm (one of the study's), sex and age band; audited with old and new values."""
    return _update(
        subject,
        {"arm": arm, "sex": sex, "age_band": age_band},
        actor=actor,
        request=request,
        summary=f"Changed the attributes of subject {subject.code}",
    )


@transaction.atomic
def visit_update(
    *,
    visit: Visit,
    label: str,
    role: str,
    date: datetime.date | None,
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> dict[str, dict]:
    label = label.strip()
    if role not in VisitRole.values:
        raise ValidationError(f"Unknown visit role {role!r}.")
    if Visit.objects.filter(subject=visit.subject, label=label).exclude(pk=visit.pk).exists():
        raise ValidationError(f"{visit.subject.code} already has a visit {label!r}.")
    return _update(
        visit,
        {"label": label, "role": role, "date": date},
        actor=actor,
        request=request,
        summary=f"Changed visit {visit.label!r} of {visit.subject.code}",
    )


@transaction.atomic
def photo_update(
    *, photo: Photo, view: str, visit: Visit, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> dict[str, dict]:
    """Correct a photo's view or move it to another visit of its study. A changed view is announced
    (`photo_view_changed`): the quality verdict depends on the view."""
    if view not in PhotoView.values:
        raise ValidationError(f"Unknown view {view!r}.")
    if visit.subject.study_id != photo.study_id:
        raise ValidationError("A photo can only move to a visit of its own study.")
    if visit.is_deleted or visit.subject.is_deleted:
        raise ValidationError("That visit is deleted; restore it first.")
    old_view = photo.view
    changes = _update(
        photo,
        {"view": view, "visit": visit},
        actor=actor,
        request=request,
        summary=f"Changed photo {photo.pk}",
    )
    if "view" in changes:
        transaction.on_commit(
            lambda: photo_view_changed.send(
                sender=Photo, photo=photo, old_view=old_view, actor=actor, request=request
            )
        )
    return changes


def alive_photos_of(record: SoftDeletable) -> list[Photo]:
    if isinstance(record, Subject):
        return list(Photo.objects.alive().filter(visit__subject=record))
    if isinstance(record, Visit):
        return list(Photo.objects.alive().filter(visit=record))
    return [record] if not record.is_deleted else []


def purge_date(record: SoftDeletable) -> datetime.datetime | None:
    if record.deleted_at is None:
        return None
    return record.deleted_at + datetime.timedelta(days=settings.FACET_DELETED_RETENTION_DAYS)


@transaction.atomic
def record_delete(
    *, record: SoftDeletable, reason: str, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> None:
    """Delete reversibly: the record (and, for a subject or visit, everything under it) disappears from
    every page, list, export and the API; its analyses stop; it can be restored until it is purged."""
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationError("Give a reason for the deletion (it is kept in the audit trail).")
    if len(reason) > MAX_REASON_LENGTH:
        raise ValidationError(f"Keep the reason under {MAX_REASON_LENGTH} characters.")
    if record.is_deleted:
        raise ValidationError(f"The {_describe(record)} is already deleted.")
    withdrawn = alive_photos_of(record)
    record.deleted_at = timezone.now()
    record.deleted_by = actor
    record.deletion_reason = reason
    record.save(update_fields=["deleted_at", "deleted_by", "deletion_reason"])
    audit_record(
        action=AuditAction.DELETE,
        summary=f"Deleted {_describe(record)} (restorable until purged)",
        actor=actor,
        target=record,
        request=request,
        details={
            "reason": reason,
            "soft": True,
            "purge_after": purge_date(record).isoformat(),
            "photos": [photo.pk for photo in withdrawn],
        },
    )
    if withdrawn:
        transaction.on_commit(
            lambda: photos_withdrawn.send(sender=Photo, photos=withdrawn, actor=actor, request=request)
        )


@transaction.atomic
def record_restore(
    *, record: SoftDeletable, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> None:
    if not record.is_deleted:
        raise ValidationError(f"The {_describe(record)} is not deleted.")
    parent = (
        record.subject if isinstance(record, Visit) else record.visit if isinstance(record, Photo) else None
    )
    if parent is not None and (parent.is_deleted or isinstance(parent, Visit) and parent.subject.is_deleted):
        raise ValidationError(f"The {_describe(record)} belongs to a deleted record; restore that first.")
    before = snapshot(record, ["deleted_at", "deleted_by", "deletion_reason"])
    record.deleted_at = None
    record.deleted_by = None
    record.deletion_reason = ""
    record.save(update_fields=["deleted_at", "deleted_by", "deletion_reason"])
    audit_record(
        action=AuditAction.RESTORE,
        summary=f"Restored {_describe(record)}",
        actor=actor,
        target=record,
        request=request,
        details={"changes": field_changes(before, snapshot(record, list(before)))},
    )


def deleted_records(study_id: int) -> list[SoftDeletable]:
    """The study's soft-deleted subjects, visits and photos, newest deletion first."""
    found: list[SoftDeletable] = [
        *Subject.objects.filter(study_id=study_id, deleted_at__isnull=False),
        *Visit.objects.filter(subject__study_id=study_id, deleted_at__isnull=False).select_related("subject"),
        *Photo.objects.filter(study_id=study_id, deleted_at__isnull=False).select_related("visit__subject"),
    ]
    return sorted(found, key=lambda record: record.deleted_at, reverse=True)


@dataclass(frozen=True)
class PurgeReport:
    subjects: int
    visits: int
    photos: int


def purge_deleted(*, now: datetime.datetime | None = None, dry_run: bool = False) -> PurgeReport:
    """Delete for good the records soft-deleted more than FACET_DELETED_RETENTION_DAYS ago, with
    everything under them (visits, photos, analyses, labels) and their stored files (on commit).
    Each purged record is one audit event (via "cli") listing the photos that went with it."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=settings.FACET_DELETED_RETENTION_DAYS)
    counts = {"subjects": 0, "visits": 0, "photos": 0}
    for model, key in ((Subject, "subjects"), (Visit, "visits"), (Photo, "photos")):
        for record in model.objects.filter(deleted_at__lte=cutoff).order_by("pk"):
            counts[key] += 1
            if not dry_run:
                _purge_one(record)
    return PurgeReport(**counts)


@transaction.atomic
def _purge_one(record: SoftDeletable) -> None:
    if isinstance(record, Subject):
        photos = Photo.objects.filter(visit__subject=record)
        study_id = record.study_id
    elif isinstance(record, Visit):
        photos = Photo.objects.filter(visit=record)
        study_id = record.subject.study_id
    else:
        photos = Photo.objects.filter(pk=record.pk)
        study_id = record.study_id
    photo_ids = list(photos.values_list("pk", flat=True))
    audit_record(
        action=AuditAction.PURGE,
        summary=f"Purged {_describe(record)}, deleted {record.deleted_at:%Y-%m-%d} "
        f"({settings.FACET_DELETED_RETENTION_DAYS}-day retention)",
        target=record,
        study_id=study_id,
        via="cli",
        details={
            "reason": record.deletion_reason,
            "deleted_at": record.deleted_at.isoformat(),
            "photos": photo_ids,
        },
    )
    record.delete()
