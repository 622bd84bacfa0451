"""Runners of the zones, wrinkles and normality kinds: the inputs they gather (earlier results of the
photo, the study's zone model, activated weights) and what they record.

The pipelines run for real with the shipped weights (zones, wrinkles) or with small stand-in weights
activated as model versions (a 32-px normalizer, a constant rating regressor); the "model not trained"
failure is asserted with the real registry.
"""

import io

import joblib
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from ml.model_names import (
    NORMALITY_AUTOENCODER,
    NORMALITY_REGRESSOR,
    WRINKLES_UNET_WDS,
    ZONES_HRNET,
    ZONES_LANDMARK,
)
from ml.registry import registry
from ml.zones.atlas import ZONES
from ml.zones.encoding import decode_zone_masks, encode_zone_masks
from webapp.analysis import services
from webapp.analysis.kinds import KIND_SPECS
from webapp.analysis.models import AnalysisJob, ModelVersion
from webapp.runs.models import RunStatus
from webapp.runs.services import run_claim
from webapp.studies.models import AnalysisKind
from workers import runners
from workers.tasks import run_analysis_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def face_photo(study_with_members, face_jpeg_bytes, monkeypatch):
    """A real face photo ingested into the study (its queued jobs go to no broker)."""
    return ingest(study_with_members, face_jpeg_bytes, "S200", monkeypatch)


def ingest(study_with_members, jpeg: bytes, subject_code: str, monkeypatch):
    """``jpeg`` uploaded as a new subject's baseline frontal photo; its queued jobs go to no broker."""
    from webapp.analysis.services import photo_upload
    from webapp.studies.models import Subject, Visit, VisitRole

    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    study = study_with_members["study"]
    subject = Subject.objects.create(study=study, code=subject_code)
    visit = Visit.objects.create(subject=subject, label="baseline", role=VisitRole.PRE)
    return photo_upload(
        visit=visit,
        view="frontal",
        uploaded_by=study_with_members["coordinator"],
        upload=SimpleUploadedFile("face.jpg", jpeg, content_type="image/jpeg"),
    )


def make_job(photo, kind: str, model_name: str) -> AnalysisJob:
    return AnalysisJob.objects.create(
        kind=kind, photo=photo, queue=KIND_SPECS[kind].queue, model_name=model_name
    )


def record(job: AnalysisJob, outcome: runners.RunOutcome):
    return services.job_succeed(
        job_id=job.pk,
        attempt=run_claim(AnalysisJob, run_id=job.pk, worker="test").attempt,
        data=outcome.data,
        model=outcome.model,
        parameters=outcome.parameters,
        code_version="test",
        artifacts=outcome.artifacts,
    )


def progress_log():
    reports = []
    return reports, lambda fraction, message: reports.append((fraction, message))


def activate(name: str, weights, version: str) -> ModelVersion:
    model_version = services.model_version_register(
        name=name, task="test", version=version, source="test stand-in", weights_path=str(weights)
    )
    model_version.is_active = True
    model_version.save()
    return model_version


def test_zone_masks_round_trip_through_the_packed_png():
    rng = np.random.default_rng(3)
    masks = np.zeros((33, 60, 80), dtype=bool)
    masks[:, 10:50, 5:70] = rng.random((33, 40, 65)) > 0.6
    content, box = encode_zone_masks(masks)
    assert box == [5, 10, 70, 50]
    decoded = decode_zone_masks(content, box, (60, 80))
    assert np.array_equal(decoded, masks)
    with pytest.raises(ValueError, match="box says"):
        decode_zone_masks(content, [0, 0, 10, 10], (60, 80))


def test_landmark_zones_on_a_real_face(face_photo):
    job = make_job(face_photo, AnalysisKind.ZONES, ZONES_LANDMARK)
    reports, progress = progress_log()
    outcome = runners.run_zones(job, progress)
    zones = outcome.data["zones"]
    assert [zone["abbreviation"] for zone in zones] == [zone.abbreviation for zone in ZONES]
    central = {zone["abbreviation"]: zone for zone in zones}
    for abbreviation in ("FFA", "CGA", "NBA", "FUL", "FLW", "FCS", "LAA", "RAA"):
        assert central[abbreviation]["area_px"] > 100, abbreviation
        assert central[abbreviation]["outlines"], abbreviation
    assert 0 < central["NBA"]["face_fraction"] < 0.2
    assert outcome.model["name"] == ZONES_LANDMARK
    assert "detected for this job" in outcome.parameters["landmarks"]
    assert any("Landmark baseline" in note for note in outcome.data["notes"])
    assert [fraction for fraction, _ in reports] == sorted(fraction for fraction, _ in reports)
    # The packed artifact holds exactly the areas reported in the JSON.
    packed = next(artifact for artifact in outcome.artifacts if artifact.name == runners.ZONE_MASKS_ARTIFACT)
    masks = decode_zone_masks(packed.content, outcome.data["mask_box"], (face_photo.height, face_photo.width))
    assert [int(mask.sum()) for mask in masks] == [zone["area_px"] for zone in zones]


def test_zones_reuse_the_photos_landmarks_result(face_photo):
    landmark_job = face_photo.jobs.get(kind=AnalysisKind.LANDMARKS)
    record(landmark_job, runners.run_landmarks(landmark_job, lambda *_: None))
    job = make_job(face_photo, AnalysisKind.ZONES, ZONES_LANDMARK)
    outcome = runners.run_zones(job, lambda *_: None)
    assert outcome.parameters["landmarks"] == f"landmarks result of job {landmark_job.pk}"


def test_zones_fail_clearly_when_the_landmarks_result_found_no_face(face_photo):
    landmark_job = face_photo.jobs.get(kind=AnalysisKind.LANDMARKS)
    record(
        landmark_job,
        runners.RunOutcome(data={"faces": []}, model={"name": "dlib-68", "version": "t"}, parameters={}),
    )
    job = make_job(face_photo, AnalysisKind.ZONES, ZONES_LANDMARK)
    from ml.core.subject import NoFaceError

    with pytest.raises(NoFaceError, match="found no face"):
        runners.run_zones(job, lambda *_: None)


def test_no_zone_model_runs_on_a_photo_whose_landmarks_result_found_no_face(face_photo):
    """The HRNet zone model would draw zones on any image: it is not run without a face."""
    landmark_job = face_photo.jobs.get(kind=AnalysisKind.LANDMARKS)
    record(
        landmark_job,
        runners.RunOutcome(data={"faces": []}, model={"name": "dlib-68", "version": "t"}, parameters={}),
    )
    job = make_job(face_photo, AnalysisKind.ZONES, ZONES_HRNET)
    from ml.core.subject import NoFaceError

    with pytest.raises(NoFaceError, match="found no face"):
        runners.run_zones(job, lambda *_: None)


def test_zone_model_choice_follows_training_state_and_the_study_setting(study_with_members):
    spec = KIND_SPECS[AnalysisKind.ZONES]
    study = study_with_members["study"]
    trained = registry.describe(ZONES_HRNET)["trained"]
    expected = ZONES_HRNET if trained else ZONES_LANDMARK
    assert spec.model_for(study) == expected
    assert spec.model_for() == expected
    study.force_zone_baseline = True
    assert spec.model_for(study) == ZONES_LANDMARK


@pytest.mark.parametrize(
    "kind, model_name, command",
    [
        (AnalysisKind.WRINKLES, WRINKLES_UNET_WDS, "python -m ml wrinkles train"),
        (AnalysisKind.NORMALITY, NORMALITY_AUTOENCODER, "python -m ml normality train-normalizer"),
        (AnalysisKind.ZONES, ZONES_HRNET, "python -m ml zones train"),
    ],
)
def test_job_of_an_untrained_model_fails_with_how_to_train_it(
    face_photo, kind, model_name, command, mark_untrained
):
    mark_untrained(model_name)
    job = make_job(face_photo, kind, model_name)
    run_analysis_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == RunStatus.FAILED
    assert "is not trained" in job.error and command in job.error
    assert not hasattr(job, "result")


def test_wrinkles_per_zone_use_the_photos_zones_result(face_photo):
    zones_job = make_job(face_photo, AnalysisKind.ZONES, ZONES_LANDMARK)
    zones_result = record(zones_job, runners.run_zones(zones_job, lambda *_: None))
    job = make_job(face_photo, AnalysisKind.WRINKLES, WRINKLES_UNET_WDS)
    outcome = runners.run_wrinkles(job, lambda *_: None)
    assert outcome.data["zones_source"].startswith(f"zones result of job {zones_job.pk}")
    stored_areas = [zone["area_px"] for zone in zones_result.data["zones"]]
    assert [zone["zone_area_px"] for zone in outcome.data["zones"]] == stored_areas
    for zone in outcome.data["zones"]:
        # The fraction is of the zone's analysed skin (hair, brows, eyes and lips are left out).
        assert zone["region_px"] <= zone["zone_area_px"] and zone["wrinkle_area_px"] == zone["area_px"]
        assert zone["area_fraction"] == pytest.approx(zone["area_px"] / max(1, zone["region_px"]))
    assert outcome.data["trained_on_semi_synthetic_data"] is False  # fine-tuned on real photos
    assert any("human wrinkle boxes" in note for note in outcome.data["notes"])
    assert {artifact.name for artifact in outcome.artifacts} == {"wrinkle-mask", "wrinkle-overlay"}
    assert outcome.model["weights_sha256"] == registry.describe(WRINKLES_UNET_WDS)["weights_sha256"]


def test_wrinkles_without_a_zones_result_use_the_studys_zone_model(face_photo):
    job = make_job(face_photo, AnalysisKind.WRINKLES, WRINKLES_UNET_WDS)
    zone_model = KIND_SPECS[AnalysisKind.ZONES].model_for(face_photo.study)
    outcome = runners.run_wrinkles(job, lambda *_: None)
    assert outcome.data["zones_source"] == f"{zone_model}, computed for this job: no zones result yet"
    assert len(outcome.data["zones"]) == 33


def test_wrinkles_follow_a_study_that_forces_the_zone_baseline(face_photo):
    face_photo.study.force_zone_baseline = True
    face_photo.study.save()
    job = make_job(face_photo, AnalysisKind.WRINKLES, WRINKLES_UNET_WDS)
    outcome = runners.run_wrinkles(job, lambda *_: None)
    assert outcome.data["zones_source"].startswith(f"{ZONES_LANDMARK}, computed for this job")


@pytest.fixture
def stand_in_normalizer(tmp_path, monkeypatch):
    """A randomly initialised 32-px autoencoder, activated as a version of the normalizer."""
    from ml.normality import autoencoder, settings

    monkeypatch.setattr(settings, "DEFAULT_PROJECTION_STEPS", 2)
    monkeypatch.setattr(settings, "DEFAULT_ADAPT_STEPS", 1)
    weights = tmp_path / "autoencoder-32.pt"
    autoencoder.save_autoencoder(
        autoencoder.FaceAutoencoder(size=32, latent_dim=16, channels=(8, 8)), weights, {}
    )
    return activate(NORMALITY_AUTOENCODER, weights, "stand-in-32")


def test_normality_with_a_small_stand_in_normalizer(
    face_photo, study_with_members, stand_in_normalizer, mark_untrained
):
    """Without a rating regressor: the default step counts, one candidate, no rating."""
    mark_untrained(NORMALITY_REGRESSOR)
    study = study_with_members["study"]
    study.normality_region = "mouth_nose"
    study.save()
    job = make_job(face_photo, AnalysisKind.NORMALITY, NORMALITY_AUTOENCODER)
    job.photo.study.refresh_from_db()
    reports, progress = progress_log()
    outcome = runners.run_normality(job, progress)
    data = outcome.data
    assert np.isfinite(data["score"]) and data["direction"] == "higher S = more normal"
    assert data["region"] == "mouth_nose" and data["rating"] is None
    assert any(NORMALITY_REGRESSOR in note for note in data["notes"])
    assert set(data["features"]) == {"d_xperc", "d_xstr", "d_xpsnr", "d_braycurtis", "d_correlation"}
    assert sum(row["energy_fraction"] for row in data["zone_energy"]) >= 0.99
    assert {artifact.name for artifact in outcome.artifacts} == {
        "normality-aligned",
        "normality-normalized",
        "normality-heatmap",
        "normality-pse",
    }
    # The heatmap's values (for the cohort's average maps): the aligned face's frame, NaN off the region.
    stored = next(artifact for artifact in outcome.artifacts if artifact.name == "normality-pse")
    values = np.load(io.BytesIO(stored.content), allow_pickle=False)
    assert values.shape == (data["crop_size"], data["crop_size"]) and values.dtype == np.float32
    assert 0 < np.isfinite(values).sum() < values.size and np.nanmin(values) >= 0
    projection_reports = [message for _, message in reports if "projection step" in message]
    assert len(projection_reports) == 4, reports  # 2 projections (w_raw, w_norm) × 2 steps
    assert data["metric"]["candidates"] == 1 and outcome.parameters["projection_steps"] == 2
    assert outcome.model["version"] == "stand-in-32" and outcome.model["weights"] == "autoencoder-32.pt"


def test_normality_refuses_a_region_the_photo_mostly_lacks(
    study_with_members, face_photo_path, stand_in_normalizer, mark_untrained, monkeypatch
):
    """A close-up cut between the pupils and from the eyes to the lower lip: most of the whole-face
    region of the aligned crop would be invented padding, so the job says so instead of scoring it."""
    import cv2

    from ml.core.imageio import load_image
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import subject_landmarks
    from ml.normality.scoring import RegionNotObservedError

    image = load_image(face_photo_path)
    points = subject_landmarks(detect_faces_with_landmarks(image)).astype(int)
    left, right = points[37:39, 0].mean().astype(int), points[43:45, 0].mean().astype(int)
    close_up = image[points[37, 1] : points[57, 1], left:right]
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(close_up, cv2.COLOR_RGB2BGR))[1].tobytes()
    mark_untrained(NORMALITY_REGRESSOR)
    study = study_with_members["study"]
    study.normality_region = "face_no_eyes"
    study.save()
    photo = ingest(study_with_members, jpeg, "S201", monkeypatch)
    job = make_job(photo, AnalysisKind.NORMALITY, NORMALITY_AUTOENCODER)
    job.photo.study.refresh_from_db()
    with pytest.raises(RegionNotObservedError, match="lies inside the photo"):
        runners.run_normality(job, progress_log()[1])


def test_normality_runs_with_the_settings_the_regressor_was_fitted_with(
    face_photo, stand_in_normalizer, tmp_path
):
    """The rating is only valid with the regressor's K and step counts; the job must use them."""
    from sklearn.dummy import DummyRegressor

    pipeline = DummyRegressor(strategy="constant", constant=4.5).fit(np.zeros((2, 5)), [4.5, 4.5])
    fitted_with = {"candidates": 2, "projection_steps": 3, "adapt_steps": 1}
    regressor = {"pipeline": pipeline, "name": "stand-in", "trained_on": "test", **fitted_with}
    joblib.dump({**regressor, "normalizer_settings": fitted_with}, tmp_path / "regressor.joblib")
    activate(NORMALITY_REGRESSOR, tmp_path / "regressor.joblib", "constant-4.5")
    job = make_job(face_photo, AnalysisKind.NORMALITY, NORMALITY_AUTOENCODER)
    reports, progress = progress_log()
    outcome = runners.run_normality(job, progress)
    assert outcome.data["rating"]["value"] == 4.5
    assert outcome.data["regressor"]["version"] == "constant-4.5"
    metric = outcome.data["metric"]
    assert (metric["candidates"], metric["projection_steps"], metric["adapt_steps"]) == (2, 3, 1)
    projection_reports = [message for _, message in reports if "projection step" in message]
    assert len(projection_reports) == 9, reports  # w_raw + 2 candidates, 3 steps each
    adaptation_reports = [message for _, message in reports if "adaptation step" in message]
    assert len(adaptation_reports) == 2, reports  # one step per candidate


def test_a_studys_own_normalizer_version_keeps_the_shipped_rating_valid(face_photo, stand_in_normalizer):
    """S from the study's autoencoder version; the shipped rating from the weights its features came from."""
    from ml.normality import models

    if not models.autoencoder_weights_path().is_file() or not models.regressor_path().is_file():
        pytest.skip("the shipped autoencoder or rating regressor is not installed")
    shipped = registry.describe(NORMALITY_AUTOENCODER)["weights_sha256"]
    assert joblib.load(models.regressor_path())["normalizer_settings"]["weights_sha256"] == shipped
    job = make_job(face_photo, AnalysisKind.NORMALITY, NORMALITY_AUTOENCODER)
    outcome = runners.run_normality(job, progress_log()[1])
    assert outcome.model["version"] == "stand-in-32" and outcome.data["crop_size"] == 32
    rating = outcome.data["rating"]
    assert rating is not None and 1.0 <= rating["value"] <= 7.0
    assert rating["features_normalizer"]["weights_sha256"] == shipped != outcome.model["weights_sha256"]


def test_an_active_model_version_is_loaded_from_its_file_and_named_in_the_provenance(face_photo, tmp_path):
    import hashlib
    import shutil

    weights = tmp_path / "unet_wds-v2.pt"
    shutil.copyfile(registry.spec(WRINKLES_UNET_WDS).weights_path, weights)
    activate(WRINKLES_UNET_WDS, weights, "v2-test")
    job = make_job(face_photo, AnalysisKind.WRINKLES, WRINKLES_UNET_WDS)
    outcome = runners.run_wrinkles(job, lambda *_: None)
    assert registry.is_loaded(WRINKLES_UNET_WDS, weights)
    assert outcome.model["version"] == "v2-test" and outcome.model["weights"] == "unet_wds-v2.pt"
    assert outcome.model["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert outcome.model["trained"] is True and outcome.model["source"] == "test stand-in"


def test_wrinkles_with_the_installed_model_on_a_real_face(face_photo):
    job = make_job(face_photo, AnalysisKind.WRINKLES, WRINKLES_UNET_WDS)
    outcome = runners.run_wrinkles(job, lambda *_: None)
    data = outcome.data
    assert len(data["zones"]) == 33 and data["zones_source"].endswith("no zones result yet")
    assert data["trained_on_semi_synthetic_data"] is False
    mask = next(artifact for artifact in outcome.artifacts if artifact.name == "wrinkle-mask")
    from ml.core.imageio import load_image

    assert int((load_image(mask.content)[..., 0] > 127).sum()) == data["wrinkle_area_px"]
    assert all(0.0 <= zone["area_fraction"] <= 1.0 for zone in data["zones"])
    assert set(data["regions"]) == {"forehead", "below_brows"}
    assert outcome.model["name"] == WRINKLES_UNET_WDS
