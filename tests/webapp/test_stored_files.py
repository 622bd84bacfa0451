"""D8: files follow their rows (deleting a photo, result or artifact removes its stored files on commit)
and `manage.py facet_orphans` reports orphans both ways."""

import json
import os
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import transaction
from django.test import Client

from webapp.analysis import services as analysis_services
from webapp.analysis.kinds import KIND_SPECS
from webapp.analysis.models import AnalysisJob, ResultArtifact
from webapp.runs.services import run_claim
from webapp.studies.models import Photo

pytestmark = pytest.mark.django_db


def photo_with_result(study, make_photo):
    photo = make_photo(study)
    job = AnalysisJob.objects.create(kind="landmarks", photo=photo, queue=KIND_SPECS["landmarks"].queue)
    claim = run_claim(AnalysisJob, run_id=job.pk, worker="test")
    result = analysis_services.job_succeed(
        job_id=job.pk,
        attempt=claim.attempt,
        data={"notes": ["TEST DATA"]},
        model={"name": "test", "version": "test"},
        parameters={},
        code_version="test",
        artifacts=[analysis_services.Artifact("overlay", b"\x89PNG test", "png", "image/png")],
    )
    return photo, result


def names_of(photo, result) -> list[str]:
    return [photo.image.name, photo.thumbnail.name] + [a.file.name for a in result.artifacts.all()]


def test_deleting_a_photo_removes_its_files_and_its_results_files(
    study_with_members, make_photo, django_capture_on_commit_callbacks
):
    photo, result = photo_with_result(study_with_members["study"], make_photo)
    names = names_of(photo, result)
    assert len(names) == 3 and all(default_storage.exists(name) for name in names)
    with django_capture_on_commit_callbacks(execute=True):
        photo.delete()
    assert not any(default_storage.exists(name) for name in names)


def test_a_rolled_back_delete_keeps_the_files(
    study_with_members, make_photo, django_capture_on_commit_callbacks
):
    photo, result = photo_with_result(study_with_members["study"], make_photo)
    names = names_of(photo, result)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        Photo.objects.filter(pk=photo.pk).delete()
        raise RuntimeError("roll back")
    assert not callbacks and all(default_storage.exists(name) for name in names)


def test_deleting_a_photo_in_the_admin_removes_its_files(
    study_with_members, make_photo, make_user, django_capture_on_commit_callbacks
):
    photo, result = photo_with_result(study_with_members["study"], make_photo)
    names = names_of(photo, result)
    root = make_user("root", staff=True)
    root.is_superuser = True
    root.save()
    client = Client()
    client.force_login(root)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/studies/photo/{photo.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Photo.objects.filter(pk=photo.pk).exists()
    assert not any(default_storage.exists(name) for name in names)


def test_a_file_another_row_still_names_is_kept(
    study_with_members, make_photo, django_capture_on_commit_callbacks
):
    photo, result = photo_with_result(study_with_members["study"], make_photo)
    artifact = result.artifacts.get()
    twin = ResultArtifact.objects.create(
        result=result, name="copy", file=artifact.file.name, content_type="image/png"
    )
    with django_capture_on_commit_callbacks(execute=True):
        artifact.delete()
    assert default_storage.exists(twin.file.name)


def test_orphans_are_reported_both_ways_and_old_ones_deleted(study_with_members, make_photo, capsys):
    photo, _ = photo_with_result(study_with_members["study"], make_photo)
    stray = default_storage.save("photos/stray.png", ContentFile(b"no row names me"))
    fresh = default_storage.save("photos/in-flight.png", ContentFile(b"an upload in progress"))
    old = time.time() - 2 * 86400
    os.utime(default_storage.path(stray), (old, old))
    default_storage.delete(photo.thumbnail.name)

    with pytest.raises(SystemExit):
        call_command("facet_orphans", "--json")
    report = json.loads(capsys.readouterr().out)
    assert [o["name"] for o in report["orphan_files"]] == [stray]
    assert report["missing_files"] == [
        {"model": "studies.Photo", "pk": str(photo.pk), "field": "thumbnail", "name": photo.thumbnail.name}
    ]
    with pytest.raises(SystemExit):  # the missing thumbnail is still reported
        call_command("facet_orphans", "--delete-orphans")
    assert not default_storage.exists(stray) and default_storage.exists(fresh)
