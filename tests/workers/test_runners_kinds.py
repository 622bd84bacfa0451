"""Runners of the zones, wrinkles and normality kinds.

Zones run for real (landmark baseline on a real face). The wrinkle and normality networks have no
weights here, so their ml calls are monkeypatched with stand-ins to test the runners' own work (per-
zone intersection, artifacts, progress); the "model not trained" failure is asserted with the real
registry.
"""

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from ml.registry import registry
from ml.zones.atlas import ZONE_INDEX, ZONES
from webapp.analysis import services
from webapp.analysis.kinds import (
    KIND_SPECS,
    NORMALITY_MODEL,
    WRINKLES_MODEL,
    ZONES_LANDMARK_MODEL,
    ZONES_SEGMENTATION_MODEL,
    AnalysisKind,
)
from webapp.analysis.models import AnalysisJob, JobStatus
from workers import runners
from workers.tasks import run_analysis_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def face_photo(study_with_members, face_jpeg_bytes, monkeypatch):
    """A real face photo ingested into the study (its queued jobs go to no broker)."""
    from webapp.studies.ingest import photo_ingest
    from webapp.studies.models import Subject, Visit, VisitRole

    monkeypatch.setattr("webapp.analysis.services._send_to_worker", lambda job: None)
    study = study_with_members["study"]
    subject = Subject.objects.create(study=study, code="S200")
    visit = Visit.objects.create(subject=subject, label="baseline", role=VisitRole.PRE)
    return photo_ingest(
        visit=visit,
        view="frontal",
        uploaded_by=study_with_members["coordinator"],
        upload=SimpleUploadedFile("face.jpg", face_jpeg_bytes, content_type="image/jpeg"),
    )


def make_job(photo, kind: str, model_name: str) -> AnalysisJob:
    return AnalysisJob.objects.create(
        kind=kind, photo=photo, queue=KIND_SPECS[kind].queue, model_name=model_name
    )


def record(job: AnalysisJob, outcome: runners.RunOutcome):
    services.job_claim(job_id=job.pk, worker="test")
    return services.job_succeed(
        job_id=job.pk,
        data=outcome.data,
        model=outcome.model,
        parameters=outcome.parameters,
        code_version="test",
        artifacts=outcome.artifacts,
    )


def progress_log():
    reports = []
    return reports, lambda fraction, message: reports.append((fraction, message))


def test_zone_masks_round_trip_through_the_packed_png():
    rng = np.random.default_rng(3)
    masks = np.zeros((33, 60, 80), dtype=bool)
    masks[:, 10:50, 5:70] = rng.random((33, 40, 65)) > 0.6
    content, box = runners.encode_zone_masks(masks)
    assert box == [5, 10, 70, 50]
    decoded = runners.decode_zone_masks(content, box, (60, 80))
    assert np.array_equal(decoded, masks)
    with pytest.raises(ValueError, match="box says"):
        runners.decode_zone_masks(content, [0, 0, 10, 10], (60, 80))


def test_landmark_zones_on_a_real_face(face_photo):
    job = make_job(face_photo, AnalysisKind.ZONES, ZONES_LANDMARK_MODEL)
    reports, progress = progress_log()
    outcome = runners.run_zones(job, progress)
    zones = outcome.data["zones"]
    assert [zone["abbreviation"] for zone in zones] == [zone.abbreviation for zone in ZONES]
    central = {zone["abbreviation"]: zone for zone in zones}
    for abbreviation in ("FFA", "CGA", "NBA", "FUL", "FLW", "FCS", "LAA", "RAA"):
        assert central[abbreviation]["area_px"] > 100, abbreviation
        assert central[abbreviation]["outlines"], abbreviation
    assert 0 < central["NBA"]["face_fraction"] < 0.2
    assert outcome.model["name"] == ZONES_LANDMARK_MODEL
    assert "detected for this job" in outcome.parameters["landmarks"]
    assert any("Landmark baseline" in note for note in outcome.data["notes"])
    assert [fraction for fraction, _ in reports] == sorted(fraction for fraction, _ in reports)
    # The packed artifact holds exactly the areas reported in the JSON.
    packed = next(artifact for artifact in outcome.artifacts if artifact.name == runners.ZONE_MASKS_ARTIFACT)
    masks = runners.decode_zone_masks(
        packed.content, outcome.data["mask_box"], (face_photo.height, face_photo.width)
    )
    assert [int(mask.sum()) for mask in masks] == [zone["area_px"] for zone in zones]


def test_zones_reuse_the_photos_landmarks_result(face_photo):
    landmark_job = face_photo.jobs.get(kind=AnalysisKind.LANDMARKS)
    record(landmark_job, runners.run_landmarks(landmark_job, lambda *_: None))
    job = make_job(face_photo, AnalysisKind.ZONES, ZONES_LANDMARK_MODEL)
    outcome = runners.run_zones(job, lambda *_: None)
    assert outcome.parameters["landmarks"] == f"landmarks result of job {landmark_job.pk}"


def test_zones_fail_clearly_when_the_landmarks_result_found_no_face(face_photo):
    landmark_job = face_photo.jobs.get(kind=AnalysisKind.LANDMARKS)
    record(
        landmark_job,
        runners.RunOutcome(data={"faces": []}, model={"name": "dlib-68", "version": "t"}, parameters={}),
    )
    job = make_job(face_photo, AnalysisKind.ZONES, ZONES_LANDMARK_MODEL)
    with pytest.raises(runners.NoFaceError, match="found no face"):
        runners.run_zones(job, lambda *_: None)


def test_zone_model_choice_follows_training_state_and_the_study_setting(study_with_members):
    spec = KIND_SPECS[AnalysisKind.ZONES]
    study = study_with_members["study"]
    trained = registry.describe(ZONES_SEGMENTATION_MODEL)["trained"]
    expected = ZONES_SEGMENTATION_MODEL if trained else ZONES_LANDMARK_MODEL
    assert spec.model_for(study) == expected
    assert spec.model_for() == expected
    study.force_zone_baseline = True
    assert spec.model_for(study) == ZONES_LANDMARK_MODEL


@pytest.mark.parametrize(
    "kind, model_name, command",
    [
        (AnalysisKind.WRINKLES, WRINKLES_MODEL, "python -m ml wrinkles train"),
        (AnalysisKind.NORMALITY, NORMALITY_MODEL, "python -m ml normality train-normalizer"),
        (AnalysisKind.ZONES, ZONES_SEGMENTATION_MODEL, "python -m ml zones train"),
    ],
)
def test_job_of_an_untrained_model_fails_with_how_to_train_it(
    face_photo, kind, model_name, command, mark_untrained
):
    mark_untrained(model_name)
    job = make_job(face_photo, kind, model_name)
    run_analysis_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "is not trained" in job.error and command in job.error
    assert not hasattr(job, "result")


class FakeWrinkleModel:
    """Stands in for the untrained wrinkle network: analyze_wrinkles is replaced below."""


def forehead_band(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A horizontal wrinkle-like band across the central forehead, above the brows."""
    mask = np.zeros(image.shape[:2], dtype=bool)
    brow_top = int(landmarks[17:27, 1].min())
    inner = int(landmarks[21, 0]), int(landmarks[22, 0])
    mask[brow_top - 25 : brow_top - 22, inner[0] - 10 : inner[1] + 10] = True
    return mask


@pytest.fixture
def fake_wrinkle_model(monkeypatch):
    description = {**registry.describe(WRINKLES_MODEL), "trained": True, "version": "stand-in"}
    real_model = runners._model
    monkeypatch.setattr(
        runners,
        "_model",
        lambda name: (
            ((FakeWrinkleModel(), {"data_label": "semi-synthetic"}), description)
            if name == WRINKLES_MODEL
            else real_model(name)
        ),
    )

    def analyze(image, landmarks, model):
        assert isinstance(model[0], FakeWrinkleModel)
        mask = forehead_band(image, landmarks)
        return {"mask": mask, "crop_box": [0, 0, 10, 10], "regions": {}, "model": {}}

    monkeypatch.setattr("ml.wrinkles.analysis.analyze_wrinkles", analyze)


def test_wrinkles_per_zone_use_the_photos_zones_result(face_photo, fake_wrinkle_model):
    zones_job = make_job(face_photo, AnalysisKind.ZONES, ZONES_LANDMARK_MODEL)
    record(zones_job, runners.run_zones(zones_job, lambda *_: None))
    job = make_job(face_photo, AnalysisKind.WRINKLES, WRINKLES_MODEL)
    outcome = runners.run_wrinkles(job, lambda *_: None)
    per_zone = {zone["abbreviation"]: zone for zone in outcome.data["zones"]}
    assert outcome.data["zones_source"].startswith(f"zones result of job {zones_job.pk}")
    assert per_zone["FFA"]["wrinkle_area_px"] > 0 and per_zone["FFA"]["count"] == 1
    assert per_zone["FCS"]["wrinkle_area_px"] == 0 and per_zone["FLW"]["area_fraction"] == 0
    assert per_zone["FFA"]["area_fraction"] == pytest.approx(
        per_zone["FFA"]["wrinkle_area_px"] / per_zone["FFA"]["zone_area_px"]
    )
    assert outcome.data["trained_on_semi_synthetic_data"] is True
    assert any("semi-synthetic" in note for note in outcome.data["notes"])
    assert {artifact.name for artifact in outcome.artifacts} == {"wrinkle-mask", "wrinkle-overlay"}


def test_wrinkles_without_a_zones_result_use_the_studys_zone_model(face_photo, fake_wrinkle_model):
    job = make_job(face_photo, AnalysisKind.WRINKLES, WRINKLES_MODEL)
    zone_model = KIND_SPECS[AnalysisKind.ZONES].model_for(face_photo.study)
    outcome = runners.run_wrinkles(job, lambda *_: None)
    assert outcome.data["zones_source"] == f"{zone_model}, computed for this job: no zones result yet"
    assert outcome.data["zones"][ZONE_INDEX["FFA"]]["wrinkle_area_px"] > 0


def test_wrinkles_follow_a_study_that_forces_the_zone_baseline(face_photo, fake_wrinkle_model):
    face_photo.study.force_zone_baseline = True
    face_photo.study.save()
    job = make_job(face_photo, AnalysisKind.WRINKLES, WRINKLES_MODEL)
    outcome = runners.run_wrinkles(job, lambda *_: None)
    assert outcome.data["zones_source"].startswith(f"{ZONES_LANDMARK_MODEL}, computed for this job")


def _stand_in_normality_models(monkeypatch, regressor=None) -> None:
    """A randomly initialised 32-px autoencoder stands in for the shipped one; ``regressor`` or none."""
    from ml.normality import autoencoder
    from webapp.analysis.kinds import NORMALITY_REGRESSOR

    stand_in = autoencoder.FaceAutoencoder(size=32, latent_dim=16, channels=(8, 8))
    description = {**registry.describe(NORMALITY_MODEL), "trained": True, "version": "stand-in"}
    models = {
        NORMALITY_MODEL: (stand_in, description),
        NORMALITY_REGRESSOR: (regressor, {"name": "stand-in"}),
    }
    monkeypatch.setattr(runners, "_model", lambda name: models[name])
    monkeypatch.setattr(
        runners, "model_is_usable", lambda name: name != NORMALITY_REGRESSOR or regressor is not None
    )


def test_normality_with_a_small_stand_in_normalizer(face_photo, study_with_members, monkeypatch):
    """Without a rating regressor: the default step counts, one candidate, no rating."""
    from ml.normality import settings

    study = study_with_members["study"]
    study.normality_region = "face_no_eyes"
    study.save()
    monkeypatch.setattr(settings, "DEFAULT_PROJECTION_STEPS", 2)
    monkeypatch.setattr(settings, "DEFAULT_ADAPT_STEPS", 1)
    _stand_in_normality_models(monkeypatch)
    job = make_job(face_photo, AnalysisKind.NORMALITY, NORMALITY_MODEL)
    job.photo.study.refresh_from_db()
    reports, progress = progress_log()
    outcome = runners.run_normality(job, progress)
    data = outcome.data
    assert np.isfinite(data["score"]) and data["direction"] == "higher S = more normal"
    assert data["region"] == "face_no_eyes" and data["rating"] is None
    assert any("normality-rating-regressor" in note for note in data["notes"])
    assert set(data["features"]) == {"d_xperc", "d_xstr", "d_xpsnr", "d_braycurtis", "d_correlation"}
    assert sum(row["energy_fraction"] for row in data["zone_energy"]) >= 0.99
    assert {artifact.name for artifact in outcome.artifacts} == {
        "normality-aligned",
        "normality-normalized",
        "normality-heatmap",
    }
    projection_reports = [message for _, message in reports if "projection step" in message]
    assert len(projection_reports) == 4, reports  # 2 projections (w_raw, w_norm) × 2 steps
    assert data["metric"]["candidates"] == 1 and outcome.parameters["projection_steps"] == 2


def test_normality_runs_with_the_settings_the_regressor_was_fitted_with(face_photo, monkeypatch):
    """The rating is only valid with the regressor's K and step counts; the job must use them."""
    from sklearn.dummy import DummyRegressor

    pipeline = DummyRegressor(strategy="constant", constant=4.5).fit(np.zeros((2, 5)), [4.5, 4.5])
    fitted_with = {"candidates": 2, "projection_steps": 3, "adapt_steps": 1}
    regressor = {"pipeline": pipeline, "name": "stand-in", "trained_on": "test", **fitted_with}
    _stand_in_normality_models(monkeypatch, {**regressor, "normalizer_settings": fitted_with})
    job = make_job(face_photo, AnalysisKind.NORMALITY, NORMALITY_MODEL)
    reports, progress = progress_log()
    outcome = runners.run_normality(job, progress)
    assert outcome.data["rating"]["value"] == 4.5
    metric = outcome.data["metric"]
    assert (metric["candidates"], metric["projection_steps"], metric["adapt_steps"]) == (2, 3, 1)
    projection_reports = [message for _, message in reports if "projection step" in message]
    assert len(projection_reports) == 9, reports  # w_raw + 2 candidates, 3 steps each
    adaptation_reports = [message for _, message in reports if "adaptation step" in message]
    assert len(adaptation_reports) == 2, reports  # one step per candidate


def test_an_active_model_version_is_run_from_its_weights_path(monkeypatch, tmp_path):
    from webapp.analysis.services import model_version_register

    weights = tmp_path / "unet_wds-v2.pt"
    weights.write_bytes(b"stand-in weights")
    version = model_version_register(
        name=WRINKLES_MODEL,
        task="wrinkle-segmentation",
        version="v2-test",
        source="test",
        weights_path=str(weights),
        weights_sha256="ab" * 32,
    )
    version.is_active = True
    version.save()
    loaded = []
    monkeypatch.setattr(runners, "_load_version", lambda name, path: loaded.append((name, path)) or "model")
    model, description = runners._model(WRINKLES_MODEL)
    assert model == "model" and loaded == [(WRINKLES_MODEL, str(weights))]
    assert description["version"] == "v2-test" and description["weights_sha256"] == "ab" * 32
    assert description["trained"] is True


def test_wrinkles_with_the_installed_model_on_a_real_face(face_photo):
    if not registry.describe(WRINKLES_MODEL)["trained"]:
        pytest.skip(f"{WRINKLES_MODEL} has no weights installed; the stand-in tests above cover the runner")
    job = make_job(face_photo, AnalysisKind.WRINKLES, WRINKLES_MODEL)
    outcome = runners.run_wrinkles(job, lambda *_: None)
    data = outcome.data
    assert len(data["zones"]) == 33 and data["zones_source"].endswith("no zones result yet")
    assert data["trained_on_semi_synthetic_data"] is True
    mask = next(artifact for artifact in outcome.artifacts if artifact.name == "wrinkle-mask")
    from ml.core.imageio import load_image

    assert int((load_image(mask.content)[..., 0] > 127).sum()) == data["wrinkle_area_px"]
    assert all(0.0 <= zone["area_fraction"] <= 1.0 for zone in data["zones"])
    assert set(data["regions"]) >= {"forehead_eye_crop", "forehead"}
    assert outcome.model["name"] == WRINKLES_MODEL
