"""`manage.py facet_demo` (run by `make run`): a demo study with pre/post photos and their analyses queued
(issue 16 item 10): London Set faces (CC-BY 4.0, credited) when the data directory exists, a labelled
synthetic set when it does not; running it again adds nothing."""

import pytest
from django.core.management import call_command

from webapp.analysis.models import AnalysisJob
from webapp.studies.models import Comparison, Photo, Study

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(sent_runs):
    return sent_runs


def demo_study() -> Study:
    from webapp.accounts.management.commands.facet_demo import DEMO_STUDY

    return Study.objects.get(name=DEMO_STUDY)


def test_demo_uses_london_faces_when_the_data_directory_exists(data_dir):
    call_command("facet_demo")
    study = demo_study()
    photos = Photo.objects.filter(study=study)
    assert photos.count() == 6
    assert sorted(photos.values_list("visit__role", flat=True)) == ["post"] * 3 + ["pre"] * 3
    assert all(code.startswith("LDN-") for code in study.subjects.values_list("code", flat=True))
    assert "CC-BY 4.0" in study.protocol and "London Set" in study.protocol
    assert AnalysisJob.objects.filter(photo__study=study, status="queued").count() >= 6
    assert Comparison.objects.filter(subject__study=study).count() == 3
    call_command("facet_demo")
    assert Photo.objects.filter(study=study).count() == 6


def test_demo_without_data_is_a_labelled_synthetic_set(monkeypatch):
    from webapp.accounts.management.commands import facet_demo

    monkeypatch.setattr(facet_demo, "data_dir_or_none", lambda: None)
    call_command("facet_demo")
    study = demo_study()
    assert Photo.objects.filter(study=study).count() == 6
    assert all(code.startswith("SYN-") for code in study.subjects.values_list("code", flat=True))
    assert "SYNTHETIC" in study.protocol
