"""The normal nose–mouth geometry and the geometry-corrected normal face (ml.normality.geometry).

Landmark sets here are synthetic (a linear face model with noise), to test the fit and the bound exactly;
the warp is checked on a drawn image.
"""

import numpy as np
import pytest

from ml.normality.geometry import (
    CONTEXT_POINTS,
    PREDICTED_POINTS,
    NormalGeometry,
    fit_normal_geometry,
    warp_to_landmarks,
)


def synthetic_faces(count: int, noise: float, seed: int) -> np.ndarray:
    """Faces of one linear face model (the same for every ``seed``): nose–mouth points are a fixed linear
    function of the other points plus ``noise`` px per axis; ``seed`` draws the faces."""
    model = np.random.default_rng(0)
    base = model.uniform(20, 108, size=(68, 2))
    context_size = 2 * len(CONTEXT_POINTS)
    mixing = model.normal(0, 0.05, size=(2 * len(PREDICTED_POINTS), context_size))
    rng = np.random.default_rng(seed)
    faces = base + rng.normal(0, 3, size=(count, 68, 2))
    context = faces[:, list(CONTEXT_POINTS)].reshape(count, -1) - base[list(CONTEXT_POINTS)].reshape(-1)
    predicted = base[list(PREDICTED_POINTS)].reshape(-1) + context @ mixing.T
    faces[:, list(PREDICTED_POINTS)] = (predicted + rng.normal(0, noise, size=predicted.shape)).reshape(
        count, -1, 2
    )
    return faces


@pytest.fixture(scope="module")
def geometry() -> NormalGeometry:
    return fit_normal_geometry(synthetic_faces(400, noise=0.5, seed=1), 128, np.array([64.0, 70.0]), 30.0)


def test_the_fit_predicts_held_out_faces_within_their_noise_and_measures_it(geometry):
    faces = synthetic_faces(50, noise=0.5, seed=2)
    errors = np.stack([face[list(PREDICTED_POINTS)] - geometry.predict(face) for face in faces])
    # 0.5 px per axis of noise: about 0.71 px per point, a little more for the fit's own error.
    assert np.sqrt((errors**2).sum(axis=2).mean()) < 0.85
    # The cross-validated residual spread is the noise put in plus the fit's own error on unseen faces
    # (82 predictors, 320 faces per fold: about 0.5 · √(1 + 82/320) = 0.56 px).
    spread = np.sqrt(geometry.covariances[:, [0, 1], [0, 1]])
    assert spread.min() > 0.45 and spread.max() < 0.7 and abs(spread.mean() - 0.56) < 0.04


def test_points_within_the_limit_stay_and_points_beyond_it_move_onto_it(geometry):
    face = synthetic_faces(1, noise=0.5, seed=3)[0]
    moved, distances = geometry.bounded(face, limit=3.0)
    inside = distances <= 3.0
    predicted_rows = np.array(PREDICTED_POINTS)
    assert np.array_equal(moved[list(CONTEXT_POINTS)], face[list(CONTEXT_POINTS)])
    assert np.allclose(moved[predicted_rows[inside]], face[predicted_rows[inside]])
    lifted = face.copy()
    lifted[54] += [0.0, -6.0]  # one mouth corner lifted by twelve standard deviations
    moved, distances = geometry.bounded(lifted, limit=3.0)
    corner = PREDICTED_POINTS.index(54)
    assert distances[corner] > 10
    residual = moved[54] - geometry.predict(lifted)[corner]
    inverse = np.linalg.inv(geometry.covariances[corner])
    assert np.sqrt(residual @ inverse @ residual) == pytest.approx(3.0)


def test_the_geometry_survives_its_file(tmp_path, geometry):
    path = tmp_path / "normal-geometry.json"
    geometry.save(path)
    loaded = NormalGeometry.load(path)
    face = synthetic_faces(1, noise=0.5, seed=4)[0]
    assert np.allclose(loaded.predict(face), geometry.predict(face))
    path.write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="Not a normal-geometry file"):
        NormalGeometry.load(path)


def test_the_warp_carries_what_lies_at_a_landmark_to_its_moved_position():
    image = np.zeros((128, 128, 3), np.uint8)
    landmarks = np.array([[x, y] for x in (20.0, 64.0, 108.0) for y in (20.0, 64.0, 108.0)])
    image[62:67, 62:67] = 255  # a bright patch on the centre landmark
    moved = landmarks.copy()
    moved[4] = [70.0, 58.0]
    warped = warp_to_landmarks(image, landmarks, moved)
    assert warped[58, 70].min() > 200 and warped[64, 64].max() < 60
    assert warp_to_landmarks(image, landmarks, landmarks) is image


def test_the_analysis_scores_the_corrected_normal_face_and_keeps_the_rating(london_photo, tmp_path):
    """A normal geometry that puts this face's mouth 3 px lower than it is: with a bound the corrected
    normal face differs, S moves and the result says what moved; with a bound that nothing exceeds, S is
    the uncorrected analysis' own. The rating's features come from the uncorrected fit either way."""
    import dataclasses

    from ml.core.landmarks import landmarks_frame
    from ml.normality.analysis import analyze_normality
    from ml.normality.geometry import geometry_landmarks
    from ml.normality.preprocess import align_face

    plain = analyze_normality(london_photo)
    aligned = align_face(london_photo, _photo_landmarks(london_photo), 128)
    centre, scale = landmarks_frame(aligned.landmarks)
    own = geometry_landmarks(aligned.image, centre, scale)
    rng = np.random.default_rng(0)
    faces = own + rng.normal(0, 0.3, size=(200, 68, 2))
    fitted = fit_normal_geometry(faces, 128, centre, scale)
    lower = np.zeros_like(fitted.intercept).reshape(-1, 2)
    lower[:, 1] = 3.0
    path = tmp_path / "geometry.json"
    dataclasses.replace(fitted, intercept=fitted.intercept + lower.reshape(-1)).save(path)

    corrected = analyze_normality(london_photo, geometry=path, geometry_limit=1.0)
    moved = corrected.data["observed"]["geometry"]
    assert moved["points_moved"] == len(PREDICTED_POINTS) and moved["largest_move_px"] > 1.5
    assert corrected.data["score"] != pytest.approx(plain.data["score"], abs=1e-3)
    assert corrected.data["rating"]["value"] == pytest.approx(plain.data["rating"]["value"])
    # The card's reference range of S was measured without the correction: not shown beside it.
    assert plain.data["reference"] is not None and corrected.data["reference"] is None
    unbounded = analyze_normality(london_photo, geometry=path, geometry_limit=1e6)
    assert unbounded.data["observed"]["geometry"]["points_moved"] == 0
    assert unbounded.data["score"] == pytest.approx(plain.data["score"])
    assert plain.data["observed"]["geometry"] is None


def _photo_landmarks(photo: np.ndarray) -> np.ndarray:
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import subject_landmarks

    return subject_landmarks(detect_faces_with_landmarks(photo))


@pytest.mark.parametrize("action", ["validate", "framing"])
def test_the_commands_refuse_a_geometry_limit_without_a_readable_geometry_file(action, tmp_path, capsys):
    from ml.cli import main

    arguments = ["normality", action, "--data", str(tmp_path), "--geometry-limit", "2"]
    assert main(arguments) == 2
    assert "normal-geometry file" in capsys.readouterr().err
    (tmp_path / "geometry.json").write_text('{"format": "other"}')
    assert main([*arguments, "--geometry", str(tmp_path / "geometry.json")]) == 2
    assert "Not a normal-geometry file" in capsys.readouterr().err
