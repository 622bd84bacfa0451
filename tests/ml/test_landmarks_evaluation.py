"""Landmark evaluation on human labels: NME, misses, CED; the fixed 300-W splits; London; FASSEG pose."""

import json
from pathlib import Path

import numpy as np
import pytest

from ml.core.landmarks import FaceLandmarks
from ml.landmarks.evaluation import FAILURE_NME, Evaluation, evaluate_faces, partial_nme, plot_ced
from ml.landmarks.human_sets import (
    LONDON_TO_IBUG68,
    LabelledFace,
    LandmarkSetError,
    landmarks300w_split,
    read_human_set,
    source_photo,
)
from ml.landmarks.pose_evaluation import PoseResult, multipose_photos, pose_summary


def _face_points(scale: float = 100.0) -> np.ndarray:
    rng = np.random.default_rng(3)
    points = rng.uniform(0, scale, (68, 2)) + 200
    points[36], points[45] = [220.0, 250.0], [300.0, 250.0]  # outer eye corners 80 px apart
    return points


class ShiftedModel:
    """A stand-in landmark model: the truth moved by a fixed offset, or no face at all."""

    def __init__(self, truths: dict[str, np.ndarray], offset: float, missing: set[str]) -> None:
        self.truths, self.offset, self.missing = truths, offset, missing
        self.current = ""

    def detect(self, image, face_detector=None):
        if self.current in self.missing:
            return []
        points = self.truths[self.current] + self.offset
        box = (*points.min(axis=0), *points.max(axis=0))
        return [FaceLandmarks(box=box, score=0.9, landmarks=points, detector="stand-in")]


def test_partial_nme_uses_labelled_points_and_the_outer_eye_corners():
    truth = _face_points()
    assert partial_nme(truth + [3.0, 4.0], truth) == pytest.approx(5.0 / 80.0)
    partial = np.full((68, 2), np.nan)
    partial[[36, 45, 48]] = truth[[36, 45, 48]]
    predicted = truth.copy()
    predicted[48] += [8.0, 0.0]
    assert partial_nme(predicted, partial) == pytest.approx((8.0 / 3) / 80.0)
    partial[36] = np.nan
    with pytest.raises(ValueError, match="outer eye corners"):
        partial_nme(predicted, partial)


def test_evaluation_matches_faces_counts_misses_and_plots(tmp_path, monkeypatch):
    import ml.core.imageio as imageio

    truths = {"a": _face_points(), "b": _face_points(120.0), "c": _face_points(90.0)}
    faces = [
        LabelledFace(image=tmp_path / f"{name}.jpg", name=name, points=points)
        for name, points in truths.items()
    ]
    model = ShiftedModel(truths, offset=4.0, missing={"c"})

    def fake_load(path):
        model.current = Path(path).stem
        return np.zeros((10, 10, 3), np.uint8)

    monkeypatch.setattr(imageio, "load_image", fake_load)
    evaluation = Evaluation("stand-in", "1", "none", "synthetic", "all", evaluate_faces(model, faces))
    summary = evaluation.summary()
    assert (summary["faces"], summary["detected"], summary["misses"]) == (3, 2, 1)
    assert summary["mean_nme"] == pytest.approx(np.hypot(4, 4) / 80.0, abs=1e-4)
    assert summary["failure_rate"] == 0.0 and summary["failure_rate_with_misses"] == pytest.approx(
        1 / 3, abs=1e-4
    )
    assert 0 < summary["auc_at_0_08"] < 2 / 3
    assert plot_ced([evaluation], tmp_path / "ced.png", "synthetic").stat().st_size > 1000
    json.dumps(evaluation.as_dict())
    assert FAILURE_NME == 0.08


def test_300w_split_is_fixed_by_source_photo_and_sized():
    names = [f"afw_{photo}_{face}" for photo in range(300) for face in (1, 2)] + [
        f"helen-train_{i}_1" for i in range(600)
    ]
    split = landmarks300w_split(names)
    assert split == landmarks300w_split(list(reversed(names)))  # order does not matter
    for photo in range(300):
        assert split[f"afw_{photo}_1"] == split[f"afw_{photo}_2"]  # faces of one photo stay together
    counts = {name: sum(1 for value in split.values() if value == name) for name in ("train", "val", "test")}
    assert abs(counts["test"] - 180) <= 2 and abs(counts["val"] - 120) <= 2
    assert source_photo("afw_1130084326_2") == "afw_1130084326"
    # New photos do not move existing faces between splits.
    extended = landmarks300w_split(names + [f"helen-train_new{i}_1" for i in range(50)])
    assert sum(split[name] != extended[name] for name in names) < 0.1 * len(names)


def test_a_folder_without_labels_is_a_clear_error(tmp_path):
    with pytest.raises(LandmarkSetError, match="landmarks.json"):
        read_human_set(tmp_path)


@pytest.mark.data
def test_the_fixed_300w_splits_are_disjoint_and_complete(data_dir):
    folder = data_dir / "landmarks300w"
    if not (folder / "landmarks.json").is_file():
        pytest.skip("landmarks300w is not in the data directory")
    parts = {name: read_human_set(folder, name) for name in ("train", "val", "test")}
    names = {name: {face.name for face in faces} for name, faces in parts.items()}
    assert not (names["train"] & names["test"]) and not (names["val"] & names["test"])
    assert sum(len(faces) for faces in parts.values()) == len(read_human_set(folder))
    assert len(parts["test"]) >= 150 and len(parts["val"]) >= 100


@pytest.mark.data
def test_london_templates_give_eight_ibug_points_on_the_photo(data_dir):
    if not (data_dir / "london" / "templates").is_dir():
        pytest.skip("the London set is not in the data directory")
    faces = read_human_set(data_dir / "london")
    assert len(faces) >= 40
    face = faces[0]
    assert face.labelled.sum() == len(LONDON_TO_IBUG68) == 8
    points = face.points
    assert points[36, 0] < points[39, 0] < points[42, 0] < points[45, 0]  # eye corners left to right
    assert points[36, 1] < points[33, 1] < points[48, 1] < points[8, 1]  # eyes, nose, mouth, chin downwards


@pytest.mark.data
def test_evaluate_command_prints_the_documented_json(data_dir, capsys, tmp_path):
    from ml.cli import main

    folder = data_dir / "landmarks68"
    if not (folder / "landmarks.json").is_file():
        pytest.skip("landmarks68 is not in the data directory")
    plot = tmp_path / "ced.png"
    assert (
        main(["landmarks", "evaluate", "--data", str(folder), "--json", "--limit", "2", "--plot", str(plot)])
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["model"] == "dlib-68" and document["detector"] == "yunet"
    assert document["summary"]["faces"] == 2 and len(document["faces"]) == 2
    assert plot.is_file()


def test_pose_summary_reports_absolute_and_relative_errors():
    rows = []
    for session, offset in (("011", 7.0), ("021", -4.0)):
        for angle in (-45.0, -15.0, 0.0, 15.0, 45.0):
            rows.append(PoseResult("x", session, angle, True, yaw=angle + offset))
    rows.append(PoseResult("y", "031", 30.0, False))
    summary = pose_summary(rows)
    assert summary["mean_abs_yaw_error_le_45"] == pytest.approx(5.5)
    assert summary["mean_abs_yaw_error_le_45_relative_to_own_0"] == pytest.approx(0.0)
    assert summary["goal_met"] is False
    thirty = next(row for row in summary["per_angle"] if row["yaw"] == 30.0)
    assert thirty["detected"] == 0 and thirty["mean_abs_error"] is None


def test_multipose_file_names_give_facet_yaw(tmp_path):
    for name in ("+45__personne01149+0+45.jpg", "-30__personne02243+0-30.jpg", "notes.jpg"):
        (tmp_path / name).write_bytes(b"")
    photos = {path.name: (yaw, session) for path, yaw, session in multipose_photos(tmp_path)}
    # FASSEG's +45 shows the nose to image left: the subject turned to their right, Facet yaw −45.
    assert photos == {
        "+45__personne01149+0+45.jpg": (-45.0, "011"),
        "-30__personne02243+0-30.jpg": (30.0, "022"),
    }


def test_yaw_error_against_other_models_zero_removes_a_turned_zero_photo_not_own_error():
    """A session whose 0° head is turned +10°: the others see +10° at 0°, so a model reading θ + 10 + 2
    has error 2 everywhere, while its own 0° estimate (12) would have cancelled its error entirely."""
    from ml.landmarks.reports import _error_against_others_0

    def result(own_error: float) -> dict:
        return {
            "photos": [
                {"session": "011", "yaw_truth": angle, "yaw": angle + 10.0 + own_error}
                for angle in (-90.0, -45.0, 0.0, 30.0)
            ]
        }

    assert _error_against_others_0(result(2.0), [result(0.0), result(0.0)]) == 2.0
    assert _error_against_others_0(result(2.0), []) is None
