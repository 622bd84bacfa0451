"""Fixtures of the contract tests: a study with a real face photo per test, and fast stand-in settings
for the normality pipeline (a constant rating regressor whose recorded extraction settings are one
candidate and one projection and adaptation step, activated for the study like any trained version)."""

import joblib
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from ml.model_names import NORMALITY_REGRESSOR


@pytest.fixture
def fast_regressor(tmp_path):
    """A fitted-looking regressor file (constant 4.0) recording K = 1 and one step of each kind."""
    from sklearn.dummy import DummyRegressor

    pipeline = DummyRegressor(strategy="constant", constant=4.0).fit(np.zeros((2, 5)), [4.0, 4.0])
    fitted_with = {"candidates": 1, "projection_steps": 1, "adapt_steps": 1}
    path = tmp_path / "fast-regressor.joblib"
    joblib.dump(
        {
            "pipeline": pipeline,
            "name": "constant",
            "trained_on": "test stand-in",
            **fitted_with,
            "normalizer_settings": fitted_with,
        },
        path,
    )
    return path


@pytest.fixture
def contract_study(study_with_members, fast_regressor, sent_runs):
    """The study of the contract tests: the landmark baseline for zones (so that runs and command line
    draw the same zones) and the fast regressor chosen for normality."""
    from webapp.analysis.services import model_version_register, study_model_version_set

    study = study_with_members["study"]
    version = model_version_register(
        name=NORMALITY_REGRESSOR,
        task="normality",
        version="fast-stand-in",
        source="contract tests",
        weights_path=str(fast_regressor),
    )
    study_model_version_set(
        study=study, name=NORMALITY_REGRESSOR, model_version=version, actor=study_with_members["coordinator"]
    )
    return study


@pytest.fixture
def upload_face(contract_study, study_with_members, face_jpeg_bytes):
    """`upload_face(code)` → a photo of the real face, uploaded into the contract study."""
    from webapp.analysis.services import photo_upload
    from webapp.studies.models import Subject, Visit, VisitRole

    def upload(code: str = "C001", content: bytes = face_jpeg_bytes):
        subject = Subject.objects.create(study=contract_study, code=code)
        visit = Visit.objects.create(subject=subject, label="baseline", role=VisitRole.PRE)
        return photo_upload(
            visit=visit,
            view="frontal",
            uploaded_by=study_with_members["coordinator"],
            upload=SimpleUploadedFile("face.jpg", content, content_type="image/jpeg"),
        )

    return upload
