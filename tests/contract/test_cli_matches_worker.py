"""The command line and the worker run the same entry point of each pipeline, so for the same photo the
CLI's JSON and the worker's stored result agree on every field the CLI prints. The worker may add what
it knows beyond the photo (where its inputs came from, how its masks are stored); provenance it records
about a study's chosen version (its label, its source) is compared by file: name and SHA-256."""

import json
import math

import pytest

from ml.cli import main
from webapp.analysis.kinds import KIND_SPECS
from webapp.analysis.models import AnalysisJob, Result
from webapp.studies.models import AnalysisKind
from workers.tasks import run_analysis_job

pytestmark = [pytest.mark.django_db, pytest.mark.data]

# Fields that describe one run or where its inputs came from, not the photo.
PER_RUN = {"timings", "zones_source", "landmarks_source"}
PROVENANCE = {"model", "regressor"}


def agree(cli, worker, path: str = "") -> list[str]:
    """Differences between the CLI's value and the worker's, for every field of the CLI's."""
    if isinstance(cli, dict):
        problems = []
        for key, value in cli.items():
            if key in PER_RUN:
                continue
            if key not in worker:
                problems.append(f"{path}{key}: missing from the worker's result")
            elif key in PROVENANCE and isinstance(value, dict):
                for field in ("name", "weights", "weights_sha256"):
                    if value.get(field) != worker[key].get(field):
                        problems.append(
                            f"{path}{key}.{field}: {value.get(field)!r} != {worker[key].get(field)!r}"
                        )
            else:
                problems += agree(value, worker[key], f"{path}{key}.")
        return problems
    if isinstance(cli, list):
        if len(cli) != len(worker):
            return [f"{path}: {len(cli)} items != {len(worker)}"]
        return [
            problem
            for index, (a, b) in enumerate(zip(cli, worker, strict=True))
            for problem in agree(a, b, f"{path}{index}.")
        ]
    if isinstance(cli, float) and isinstance(worker, float):
        return [] if math.isclose(cli, worker, rel_tol=1e-6, abs_tol=1e-9) else [f"{path}: {cli} != {worker}"]
    return [] if cli == worker else [f"{path}: {cli!r} != {worker!r}"]


def worker_result(photo, kind: str) -> dict:
    spec = KIND_SPECS[kind]
    job = AnalysisJob.objects.filter(photo=photo, kind=kind).first() or AnalysisJob.objects.create(
        photo=photo, kind=kind, queue=spec.queue, model_name=spec.model_for(photo.study)
    )
    run_analysis_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return Result.objects.get(job=job).data


def cli_json(capsys, *arguments: str) -> dict:
    capsys.readouterr()
    assert main([*arguments, "--json"]) in (0, None)
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def stored_photo(upload_face, tmp_path):
    """The uploaded photo and a copy of its stored (metadata-free) file for the command line."""
    photo = upload_face()
    path = tmp_path / "stored.png"
    with photo.image.open("rb") as handle:
        path.write_bytes(handle.read())
    return photo, path


def test_landmarks(stored_photo, capsys):
    photo, path = stored_photo
    worker = worker_result(photo, AnalysisKind.LANDMARKS)
    cli = cli_json(capsys, "landmarks", "detect", str(path), "--model", photo.study.landmark_detector)
    assert not agree(cli, worker), agree(cli, worker)
    assert len(cli["faces"]) == 1 and cli["subject"] == 0


def test_zones(stored_photo, capsys, tmp_path):
    photo, path = stored_photo
    worker = worker_result(photo, AnalysisKind.ZONES)
    model = KIND_SPECS[AnalysisKind.ZONES].model_for(photo.study)
    cli = cli_json(capsys, "zones", "predict", str(path), "--model", model, "--out", str(tmp_path / "zones"))
    assert not agree(cli, worker), agree(cli, worker)
    assert sum(zone["face_fraction"] for zone in cli["zones"]) > 0


def test_wrinkles(stored_photo, capsys):
    photo, path = stored_photo
    photo.study.force_zone_baseline = True  # the CLI draws the landmark baseline's zones
    photo.study.save()
    worker = worker_result(photo, AnalysisKind.WRINKLES)
    cli = cli_json(capsys, "wrinkles", "segment", str(path))
    assert not agree(cli, worker), agree(cli, worker)
    assert len(cli["zones"]) == 33


def test_normality(stored_photo, capsys, fast_regressor):
    photo, path = stored_photo
    worker = worker_result(photo, AnalysisKind.NORMALITY)
    cli = cli_json(
        capsys,
        "normality",
        "score",
        str(path),
        "--region",
        photo.study.normality_region,
        "--regressor",
        str(fast_regressor),
    )
    assert not agree(cli, worker), agree(cli, worker)
    assert cli["rating"]["value"] == 4.0 and cli["metric"]["candidates"] == 1
