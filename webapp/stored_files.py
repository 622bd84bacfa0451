"""Files follow their rows: a stored file is deleted when the last row naming it is deleted, and
`manage.py facet_orphans` reports files without rows and rows without files.

Deletion waits for the transaction's commit (a rolled-back delete keeps its files), and a file is
deleted only when no row of any model still names it. This covers every way a row goes: the admin,
a service's purge, a cascade from a photo to its jobs, results and artifacts, or `QuerySet.delete()`.
Only deletions outside the ORM (raw SQL, a restored database) can leave orphans; the command finds
them.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from django.apps import apps
from django.core.files.storage import Storage
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.utils import timezone

logger = logging.getLogger(__name__)

PROJECT_APP_PREFIX = "webapp."


@cache
def file_fields() -> tuple[tuple[type[models.Model], models.FileField], ...]:
    """Every (model, FileField) of the project's apps."""
    return tuple(
        (model, field)
        for model in apps.get_models()
        if model.__module__.startswith(PROJECT_APP_PREFIX)
        for field in model._meta.get_fields()
        if isinstance(field, models.FileField)
    )


def connect() -> None:
    """Connect the delete receiver to each model that has files (not to all: that would turn every
    other model's fast bulk delete into a row-by-row one)."""
    for model in {model for model, _ in file_fields()}:
        post_delete.connect(
            _delete_files_on_commit, sender=model, dispatch_uid=f"stored-files-{model._meta.label}"
        )


def _delete_files_on_commit(sender: type[models.Model], instance: models.Model, using: str, **kwargs) -> None:
    names = [
        (field.storage, getattr(instance, field.attname).name)
        for model, field in file_fields()
        if model is sender and getattr(instance, field.attname)
    ]
    if names:
        delete_on_commit(names, using=using)


def delete_on_commit(names: list[tuple[Storage, str]], *, using: str | None = None) -> None:
    """Delete the stored files once the transaction commits, each only if no row names it any more
    (a row that let go of its file without being deleted, e.g. a purged export, uses this too)."""
    transaction.on_commit(lambda: _delete_unreferenced(names), using=using, robust=True)


def is_referenced(storage: Storage, name: str) -> bool:
    return any(
        model._default_manager.filter(**{field.attname: name}).exists()
        for model, field in file_fields()
        if field.storage is storage
    )


def _delete_unreferenced(names: list[tuple[Storage, str]]) -> None:
    for storage, name in names:
        if is_referenced(storage, name):
            continue  # another row still names the file
        try:
            storage.delete(name)
        except Exception:
            # The row is gone either way; `facet_orphans` lists the file for an operator.
            logger.exception("Could not delete the stored file %s of a deleted row", name)


# --- orphans -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MissingFile:
    """A row whose file is not in storage."""

    model: str
    pk: object
    field: str
    name: str


@dataclass(frozen=True)
class OrphanFile:
    """A stored file that no row names."""

    name: str
    size: int
    modified: datetime | None


def referenced_names(storage: Storage) -> dict[str, list[tuple[str, object, str]]]:
    names: dict[str, list[tuple[str, object, str]]] = {}
    for model, field in file_fields():
        if field.storage is not storage:
            continue
        rows = model._default_manager.exclude(**{field.attname: ""}).values_list("pk", field.attname)
        for pk, name in rows.iterator(chunk_size=2000):
            names.setdefault(name, []).append((model._meta.label, pk, field.name))
    return names


def stored_names(storage: Storage, folder: str = "") -> Iterator[str]:
    directories, files = storage.listdir(folder)
    for name in files:
        yield f"{folder}/{name}" if folder else name
    for directory in directories:
        yield from stored_names(storage, f"{folder}/{directory}" if folder else directory)


def find_orphans(storage: Storage, min_age: timedelta) -> tuple[list[OrphanFile], list[MissingFile]]:
    """Files no row names (older than `min_age`: an upload in progress writes its files before its
    row commits), and rows whose file is missing."""
    referenced = referenced_names(storage)
    stored = set(stored_names(storage))
    cutoff = timezone.now() - min_age
    orphans = []
    for name in sorted(stored - set(referenced)):
        modified = _modified_time(storage, name)
        if modified is None or modified <= cutoff:
            orphans.append(OrphanFile(name, storage.size(name), modified))
    missing = [
        MissingFile(model, pk, field, name)
        for name, rows in sorted(referenced.items())
        if name not in stored
        for model, pk, field in rows
    ]
    return orphans, missing


def _modified_time(storage: Storage, name: str) -> datetime | None:
    try:
        return storage.get_modified_time(name)
    except (NotImplementedError, OSError):
        return None
