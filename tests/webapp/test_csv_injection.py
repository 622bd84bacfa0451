"""D7: no CSV export writes a cell that a spreadsheet would run as a formula (OWASP CSV injection)."""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from webapp.audit.services import audit_record
from webapp.labeling.services import INDEX_COLUMNS, index_csv
from webapp.spreadsheets import SafeCsvWriter, neutralise_cell
from webapp.studies.models import VisitRole
from webapp.studies.services import comparison_create

HOSTILE = ['=HYPERLINK("http://evil","x")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1+1", "-2+3", "\tcmd", "\rcmd"]


@pytest.mark.parametrize("value", HOSTILE)
def test_formula_triggers_are_quoted(value):
    assert neutralise_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["-0.25", "+3", "1e-5", "-12", "baseline", "", "week 12", 4, None, -1.5])
def test_numbers_and_plain_text_are_unchanged(value):
    assert neutralise_cell(value) == value


def test_writer_neutralises_every_cell_of_a_row():
    buffer = io.StringIO()
    SafeCsvWriter(buffer).writerow(["=1+1", "ok", -3, "-3"])
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == ["'=1+1", "ok", "-3", "-3"]


@pytest.mark.django_db
def test_cohort_csv_quotes_a_hostile_visit_label(study_with_members, make_photo):
    study = study_with_members["study"]
    pre = make_photo(
        study, subject_code="@SUM(A1)", visit_label='=HYPERLINK("http://evil")', role=VisitRole.PRE
    )
    post = make_photo(study, subject_code="@SUM(A1)", visit_label="-cmd", role=VisitRole.POST)
    comparison_create(pre_visit=pre.visit, post_visit=post.visit, actor=study_with_members["coordinator"])
    client = Client()
    client.force_login(study_with_members["coordinator"])
    response = client.get(reverse("studies:study_cohort_csv", args=[study.pk]))
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[1][:3] == ["'@SUM(A1)", '\'=HYPERLINK("http://evil")', "'-cmd"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


@pytest.mark.django_db
def test_audit_csv_quotes_hostile_text(make_user):
    admin = make_user("siteadmin", staff=True)
    audit_record(action="view", summary="=cmd|'/C calc'!A0", actor=admin, object_type="studies.photo")
    client = Client()
    client.force_login(admin)
    response = client.get(reverse("audit:event_export"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert "'=cmd|'/C calc'!A0" in {row["summary"] for row in rows}


def test_label_dataset_index_quotes_hostile_text():
    row = dict.fromkeys(INDEX_COLUMNS, "")
    row.update(subject="=1+1", visit="@x", wrinkle_fraction="0.250000")
    parsed = next(csv.DictReader(io.StringIO(index_csv([row]).decode())))
    assert (
        parsed["subject"] == "'=1+1" and parsed["visit"] == "'@x" and parsed["wrinkle_fraction"] == "0.250000"
    )
