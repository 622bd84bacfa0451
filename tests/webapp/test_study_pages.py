"""The clinician/coordinator pages: rendering, permissions, create flows, upload endpoint, audited images."""

import datetime
import json
import re
from unittest import mock

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from webapp.analysis.models import AnalysisJob, Result
from webapp.audit.models import AuditAction, AuditEvent
from webapp.runs.models import RunStatus
from webapp.studies.models import Comparison, Photo, Role, StudyMembership, Subject, Visit, VisitRole

pytestmark = pytest.mark.django_db


def reference_landmarks() -> np.ndarray:
    """68 distinct points spread like a face in a 256×256 photo (only their geometry matters here)."""
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    radii = 60 + 25 * np.sin(3 * angles)
    return np.stack([128 + radii * np.cos(angles), 128 + radii * np.sin(angles)], axis=1)


def add_landmark_result(photo: Photo, landmarks: np.ndarray, *, quality_ok: bool = True) -> Result:
    job = AnalysisJob.objects.create(
        kind="landmarks",
        photo=photo,
        queue="cpu",
        model_name="dlib-68",
        status=RunStatus.SUCCEEDED,
        progress=1.0,
    )
    data = {
        "faces": [
            {
                "box": [60.0, 50.0, 200.0, 210.0],
                "score": 1.2,
                "detector": "dlib-hog",
                "landmarks": landmarks.tolist(),
                "pose": {"yaw": 3.5, "pitch": -2.0, "roll": 1.2},
            }
        ],
        "quality": {
            "ok": quality_ok,
            "reasons": [] if quality_ok else ["The photo is blurred (sharpness 12 < 40)."],
            "measures": {"sharpness": 12.0 if not quality_ok else 150.0},
        },
        "model": {"name": "dlib-68", "version": "19.24"},
        "image": {"width": 256, "height": 256},
    }
    return Result.objects.create(
        job=job, data=data, model_name="dlib-68", model_version="19.24", code_version="test"
    )


@pytest.fixture
def scene(study_with_members, make_photo):
    """A subject with a pre and a post visit, one frontal photo each with landmarks, and a comparison."""
    study = study_with_members["study"]
    pre = make_photo(study, subject_code="S-001", visit_label="baseline", role=VisitRole.PRE)
    post = make_photo(study, subject_code="S-001", visit_label="week 12", role=VisitRole.POST)
    Visit.objects.filter(pk=pre.visit_id).update(date=datetime.date(2025, 1, 10))
    Visit.objects.filter(pk=post.visit_id).update(date=datetime.date(2025, 4, 10))
    pre_points = reference_landmarks()
    # The post face is 1.25× larger, turned by 10° and shifted: registration must undo exactly this.
    angle = np.radians(10)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    post_points = 1.25 * pre_points @ rotation.T + np.array([-20.0, 12.0])
    add_landmark_result(pre, pre_points)
    add_landmark_result(post, post_points, quality_ok=False)
    subject = pre.visit.subject
    comparison = Comparison.objects.create(subject=subject, pre_visit=pre.visit, post_visit=post.visit)
    return {
        **study_with_members,
        "pre": pre,
        "post": post,
        "subject": subject,
        "comparison": comparison,
        "pre_points": pre_points,
        "post_points": post_points,
    }


def page_urls(scene) -> list[str]:
    return [
        reverse("studies:study_detail", args=[scene["study"].pk]),
        reverse("studies:subject_detail", args=[scene["subject"].pk]),
        reverse("studies:photo_detail", args=[scene["pre"].pk]),
        reverse("studies:photo_image", args=[scene["pre"].pk]),
        reverse("studies:photo_thumbnail", args=[scene["pre"].pk]),
        reverse("studies:comparison_detail", args=[scene["comparison"].pk]),
    ]


def write_requests(scene) -> list[tuple[str, dict]]:
    study, subject = scene["study"], scene["subject"]
    membership = StudyMembership.objects.get(study=study, user=scene["rater"])
    return [
        (reverse("studies:member_add", args=[study.pk]), {"username": "outsider", "role": Role.RATER}),
        (reverse("studies:member_role", args=[study.pk, membership.pk]), {"role": Role.MONITOR}),
        (reverse("studies:member_remove", args=[study.pk, membership.pk]), {}),
        (reverse("studies:subject_create", args=[study.pk]), {"code": "S-999"}),
        (
            reverse("studies:visit_create", args=[subject.pk]),
            {"label": "week 24", "role": VisitRole.FOLLOW_UP},
        ),
        (
            reverse("studies:comparison_create", args=[subject.pk]),
            {"pre_visit": scene["post"].visit_id, "post_visit": scene["pre"].visit_id},
        ),
        (reverse("studies:photo_upload", args=[scene["pre"].visit_id]), {"view": "frontal"}),
    ]


def test_every_page_renders_for_a_read_only_member(client, scene):
    client.force_login(scene["monitor"])
    assert scene["study"].name in client.get(reverse("studies:study_list")).content.decode()
    for url in page_urls(scene):
        response = client.get(url)
        assert response.status_code == 200, url
    study_page = client.get(page_urls(scene)[0]).content.decode()
    assert "S-001" in study_page and "Pre/post comparisons" in study_page
    assert "complete" in study_page
    Visit.objects.create(subject=scene["subject"], label="week 24", role=VisitRole.FOLLOW_UP)
    assert "week 24: Frontal" in client.get(page_urls(scene)[0]).content.decode()
    # A monitor sees no write forms.
    assert reverse("studies:subject_create", args=[scene["study"].pk]) not in study_page
    assert "upload-panel" not in client.get(page_urls(scene)[1]).content.decode()


def test_outsider_gets_404_for_every_page_and_write(client, scene):
    client.force_login(scene["outsider"])
    assert scene["study"].name not in client.get(reverse("studies:study_list")).content.decode()
    for url in page_urls(scene):
        assert client.get(url).status_code == 404, url
    for url, data in write_requests(scene):
        assert client.post(url, data).status_code == 404, url
    assert Subject.objects.filter(code="S-999").count() == 0


def test_monitor_gets_403_on_every_write(client, scene):
    client.force_login(scene["monitor"])
    for url, data in write_requests(scene):
        assert client.post(url, data).status_code == 403, url
    assert not Subject.objects.filter(code="S-999").exists()
    assert StudyMembership.objects.get(study=scene["study"], user=scene["rater"]).role == Role.RATER


def test_pages_require_login(client, scene):
    for url in [reverse("studies:study_list"), *page_urls(scene)]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


def test_any_user_creates_a_study_when_the_setting_allows_everyone(client, settings, make_user):
    settings.FACET_STUDY_CREATORS = "everyone"
    user = make_user("newcomer")
    client.force_login(user)
    assert client.get(reverse("studies:study_create")).status_code == 200
    response = client.post(
        reverse("studies:study_create"),
        {
            "name": "Botulinum toxin glabella",
            "protocol": "Two visits.",
            "required_views": ["frontal", "left45"],
            "analyses": ["landmarks"],
        },
    )
    membership = StudyMembership.objects.get(user=user)
    assert response.status_code == 302
    assert response["Location"] == reverse("studies:study_detail", args=[membership.study_id])
    assert membership.role == Role.COORDINATOR
    assert membership.study.required_views == ["frontal", "left45"]
    duplicate = client.post(
        reverse("studies:study_create"),
        {
            "name": "Botulinum toxin glabella",
            "required_views": ["frontal"],
            "analyses": ["landmarks"],
        },
    )
    assert duplicate.status_code == 200 and "already exists" in duplicate.content.decode()


def test_subject_codes_that_look_like_names_are_refused(client, study_with_members):
    study = study_with_members["study"]
    client.force_login(study_with_members["clinician"])
    url = reverse("studies:subject_create", args=[study.pk])
    refused = client.post(url, {"code": "Jane Doe"}, follow=True)
    assert "no names, no spaces" in refused.content.decode()
    assert not Subject.objects.filter(study=study).exists()
    created = client.post(url, {"code": "S-014"})
    subject = Subject.objects.get(study=study, code="S-014")
    assert created["Location"] == reverse("studies:subject_detail", args=[subject.pk])
    again = client.post(url, {"code": "S-014"}, follow=True)
    assert "already exists" in again.content.decode()


def test_visits_and_a_default_comparison_of_latest_pre_and_post(client, study_with_members):
    study = study_with_members["study"]
    subject = Subject.objects.create(study=study, code="S-002")
    client.force_login(study_with_members["clinician"])
    visit_url = reverse("studies:visit_create", args=[subject.pk])
    for label, date, role in [
        ("screening", "2025-01-02", "pre"),
        ("baseline", "2025-01-09", "pre"),
        ("week 12", "2025-04-01", "post"),
    ]:
        assert client.post(visit_url, {"label": label, "date": date, "role": role}).status_code == 302
    page = client.get(reverse("studies:subject_detail", args=[subject.pk])).content.decode()
    baseline, week12 = Visit.objects.get(label="baseline"), Visit.objects.get(label="week 12")
    assert re.search(rf'<option value="{baseline.pk}" selected>baseline', page)
    assert re.search(rf'<option value="{week12.pk}" selected>week 12', page)
    assert page.index("screening") < page.index("baseline") < page.index("week 12")
    response = client.post(
        reverse("studies:comparison_create", args=[subject.pk]),
        {"pre_visit": baseline.pk, "post_visit": week12.pk},
    )
    comparison = Comparison.objects.get(subject=subject)
    assert response["Location"] == reverse("studies:comparison_detail", args=[comparison.pk])
    same = client.post(
        reverse("studies:comparison_create", args=[subject.pk]),
        {"pre_visit": baseline.pk, "post_visit": baseline.pk},
        follow=True,
    )
    assert "Choose two different visits." in same.content.decode()


def test_coordinator_manages_members_but_keeps_a_coordinator(client, study_with_members, make_user):
    study, coordinator = study_with_members["study"], study_with_members["coordinator"]
    newcomer = make_user("newclinician")
    client.force_login(coordinator)
    add_url = reverse("studies:member_add", args=[study.pk])
    client.post(add_url, {"username": "newclinician", "role": "clinician"})
    membership = StudyMembership.objects.get(study=study, user=newcomer)
    assert membership.role == Role.CLINICIAN
    unknown = client.post(add_url, {"username": "nobody", "role": "rater"}, follow=True)
    assert "There is no active user called &#x27;nobody&#x27;." in unknown.content.decode()
    client.post(reverse("studies:member_role", args=[study.pk, membership.pk]), {"role": "rater"})
    membership.refresh_from_db()
    assert membership.role == Role.RATER
    client.post(reverse("studies:member_remove", args=[study.pk, membership.pk]))
    assert not StudyMembership.objects.filter(pk=membership.pk).exists()
    own = StudyMembership.objects.get(study=study, user=coordinator)
    demoted = client.post(
        reverse("studies:member_role", args=[study.pk, own.pk]), {"role": "monitor"}, follow=True
    )
    assert "at least one coordinator" in demoted.content.decode()
    removed = client.post(reverse("studies:member_remove", args=[study.pk, own.pk]), follow=True)
    assert "at least one coordinator" in removed.content.decode()
    assert StudyMembership.objects.get(pk=own.pk).role == Role.COORDINATOR


@pytest.fixture
def no_broker():
    with mock.patch("webapp.runs.dispatch.send_run") as send:
        yield send


def test_upload_endpoint_explains_a_bad_file_and_keeps_nothing(client, study_with_members, no_broker):
    study = study_with_members["study"]
    visit = Visit.objects.create(
        subject=Subject.objects.create(study=study, code="S-003"), label="baseline", role=VisitRole.PRE
    )
    client.force_login(study_with_members["clinician"])
    url = reverse("studies:photo_upload", args=[visit.pk])
    not_an_image = SimpleUploadedFile(
        "face.jpg", b"this is a text file, not a photo", content_type="image/jpeg"
    )
    response = client.post(url, {"file": not_an_image, "view": "frontal"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False and len(body["error"]) > 15 and body["error"].endswith(".")
    no_file = client.post(url, {"view": "frontal"})
    assert no_file.status_code == 400 and no_file.json()["error"].startswith("file:")
    bad_view = client.post(url, {"view": "upside-down", "file": SimpleUploadedFile("a.png", b"x")})
    assert bad_view.status_code == 400 and "view" in bad_view.json()["error"]
    assert not Photo.objects.exists()
    client.force_login(study_with_members["rater"])
    refused = client.post(url, {"view": "frontal", "file": SimpleUploadedFile("a.png", b"x")})
    assert refused.status_code == 403 and refused.json()["ok"] is False


def test_upload_endpoint_stores_a_photo_and_queues_its_analysis(
    client, study_with_members, no_broker, face_jpeg_bytes, django_capture_on_commit_callbacks
):
    study = study_with_members["study"]
    visit = Visit.objects.create(
        subject=Subject.objects.create(study=study, code="S-004"), label="baseline", role=VisitRole.PRE
    )
    client.force_login(study_with_members["clinician"])
    with django_capture_on_commit_callbacks(execute=True):
        upload = SimpleUploadedFile("IMG_0001.JPG", face_jpeg_bytes)
        response = client.post(
            reverse("studies:photo_upload", args=[visit.pk]), {"view": "left45", "file": upload}
        )
    assert response.status_code == 201, response.content
    payload = response.json()
    photo = Photo.objects.get(pk=payload["photo"]["id"])
    assert payload["ok"] is True and payload["photo"]["view"] == "left45"
    assert payload["photo"]["url"] == reverse("studies:photo_detail", args=[photo.pk])
    assert [job["kind"] for job in payload["photo"]["jobs"]] == ["landmarks"]
    assert no_broker.call_count == 1


def test_photo_image_is_audited_and_never_cached(client, scene):
    photo = scene["pre"]
    client.force_login(scene["rater"])
    response = client.get(reverse("studies:photo_image", args=[photo.pk]))
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    event = AuditEvent.objects.filter(
        action=AuditAction.VIEW, object_type="studies.photo", object_id=str(photo.pk)
    ).get()
    assert event.actor == scene["rater"] and event.study_id == scene["study"].pk
    download = client.get(reverse("studies:photo_image", args=[photo.pk]) + "?download=1")
    assert download["Content-Disposition"].startswith("attachment;")
    assert "S-001" in download["Content-Disposition"]
    assert download["Cache-Control"] == "private, no-store"
    assert AuditEvent.objects.filter(action=AuditAction.DOWNLOAD, object_id=str(photo.pk)).count() == 1
    thumbnail = client.get(reverse("studies:photo_thumbnail", args=[photo.pk]))
    assert thumbnail["Cache-Control"] == "private, no-store"
    assert AuditEvent.objects.filter(action=AuditAction.VIEW, object_id=str(photo.pk)).count() == 2


def test_photo_page_embeds_landmarks_pose_and_quality_reasons(client, scene):
    client.force_login(scene["clinician"])
    page = client.get(reverse("studies:photo_detail", args=[scene["post"].pk])).content.decode()
    embedded = re.search(r'<script id="landmark-data" type="application/json">(.*?)</script>', page, re.S)
    data = json.loads(embedded.group(1))
    assert np.allclose(data["faces"][0]["landmarks"], scene["post_points"])
    assert "Quality: check this photo" in page and "The photo is blurred (sharpness 12 &lt; 40)." in page
    assert "3.5°" in page and "-2.0°" in page and "1.2°" in page
    assert "dlib-68" in page and "19.24" in page
    assert reverse("runs:status", args=["analysis", scene["post"].jobs.get().pk]) in page
    viewed = AuditEvent.objects.get(action=AuditAction.VIEW, object_type="studies.photo")
    assert viewed.details["results"] == [scene["post"].jobs.get().result.pk]
    pre_page = client.get(reverse("studies:photo_detail", args=[scene["pre"].pk])).content.decode()
    assert "Quality: passes" in pre_page


def test_comparison_registers_post_onto_pre_with_the_landmark_similarity(client, scene):
    client.force_login(scene["clinician"])
    page = client.get(reverse("studies:comparison_detail", args=[scene["comparison"].pk])).content.decode()
    match = re.search(r"transform: matrix\(([^)]*)\)", page)
    a, b, c, d, e, f = (float(value) for value in match.group(1).split(","))
    mapped = scene["post_points"] @ np.array([[a, c], [b, d]]).T + np.array([e, f])
    assert np.abs(mapped - scene["pre_points"]).max() < 0.01
    assert "scale 0.800" in page and "rotation -10.0°" in page
    assert "data-wipe" in page
    (view,) = AuditEvent.objects.filter(action=AuditAction.VIEW)
    assert (view.object_type, view.object_id) == ("studies.comparison", str(scene["comparison"].pk))
    assert sorted(view.details["photos"]) == sorted([scene["pre"].pk, scene["post"].pk])


def test_comparison_names_the_missing_or_failed_landmark_job(client, scene):
    post_job = scene["post"].jobs.get()
    post_job.status = RunStatus.FAILED
    post_job.error = "No face was found."
    post_job.save()
    Result.objects.filter(job=post_job).delete()
    AnalysisJob.objects.filter(photo=scene["pre"]).delete()
    client.force_login(scene["clinician"])
    page = client.get(reverse("studies:comparison_detail", args=[scene["comparison"].pk])).content.decode()
    assert "No landmark job has been run on the pre photo." in page
    assert f"The landmark job of the post photo (job {post_job.pk}) failed: No face was found." in page
    assert "transform: matrix(" not in page
    photo_page = client.get(reverse("studies:photo_detail", args=[scene["post"].pk])).content.decode()
    assert "Landmarks not available yet" in photo_page and "No face was found." in photo_page
    assert reverse("runs:retry", args=["analysis", post_job.pk]) in photo_page
    client.force_login(scene["monitor"])
    monitor_page = client.get(reverse("studies:photo_detail", args=[scene["post"].pk])).content.decode()
    assert reverse("runs:retry", args=["analysis", post_job.pk]) not in monitor_page


def test_account_pages_render_and_reset_mail_links_back(client, make_user, mailoutbox):
    user = make_user("forgetful")
    login = client.get(reverse("login")).content.decode()
    assert 'name="username"' in login and reverse("password_reset") in login
    response = client.post(reverse("password_reset"), {"email": user.email})
    assert response["Location"] == reverse("password_reset_done")
    assert mailoutbox[0].subject == "Facet password reset"
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mailoutbox[0].body).group(1)
    confirm = client.get(link, follow=True)
    assert "Choose a new password" in confirm.content.decode()
    client.force_login(user)
    assert "Change your password" in client.get(reverse("password_change")).content.decode()
    logout = client.post(reverse("logout"))
    assert logout["Location"] == reverse("login")
