"""68-point keypoint formats: flip_idx, round trips of every format, immutable versions."""

import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

from ml.landmarks.formats import (
    IBUG68_FLIP_IDX,
    NUM_KEYPOINTS,
    DatasetFormatError,
    ImageRecord,
    Instance,
    KeypointDataset,
    Provenance,
    export_yolo_pose,
    flip_keypoints,
    from_coco,
    import_ibug_pts,
    read_dlib_xml,
    read_pts,
    read_yolo_pose,
    to_coco,
    write_dlib_xml,
    write_pts,
    yolo_label_lines,
)
from ml.landmarks.keypoint_datasets import CorruptVersionError, DatasetStore, VersionExistsError


def test_flip_idx_is_an_involution_of_68_points():
    flip = np.asarray(IBUG68_FLIP_IDX)
    assert sorted(flip) == list(range(NUM_KEYPOINTS))
    assert (flip[flip] == np.arange(NUM_KEYPOINTS)).all()


@pytest.mark.parametrize(
    "left, right",
    [
        (36, 45),
        (37, 44),
        (38, 43),
        (39, 42),
        (40, 47),
        (41, 46),
        (0, 16),
        (8, 8),
        (17, 26),
        (21, 22),
        (27, 27),
        (30, 30),
        (31, 35),
        (33, 33),
        (48, 54),
        (51, 51),
        (55, 59),
        (57, 57),
        (60, 64),
        (65, 67),
        (66, 66),
    ],
)
def test_flip_idx_pairs_mirror_points(left, right):
    assert IBUG68_FLIP_IDX[left] == right
    assert IBUG68_FLIP_IDX[right] == left


def test_flipping_a_face_puts_the_right_eye_where_the_left_was(make_landmarks):
    points = make_landmarks()  # frontal face centred in a 600-pixel-wide image
    flipped = flip_keypoints(points, width=600)
    # After a mirror the new outer corner of the subject's right eye (36) sits where 45 was mirrored.
    assert np.allclose(flipped[36], [599 - points[45, 0], points[45, 1]])
    # A frontal face is near-symmetric: flipped landmarks land close to the originals, eyes included.
    inter_ocular = np.linalg.norm(points[36] - points[45])
    assert np.linalg.norm(flipped[36:48] - points[36:48], axis=1).max() < 0.15 * inter_ocular
    assert np.allclose(flip_keypoints(flipped, width=600), points)


def _face(shift: float = 0.0, source: str = "human", confidence=None) -> Instance:
    rng = np.random.default_rng(int(shift))
    points = rng.uniform(20, 80, size=(NUM_KEYPOINTS, 2)) + shift
    return Instance.from_points(points, Provenance(source=source, confidence=confidence))


@pytest.fixture
def dataset(tmp_path) -> KeypointDataset:
    records = []
    for index, (split, faces) in enumerate(
        [("train", [_face(0), _face(100, "yolo-pose68@c-iter0", 0.91)]), ("val", [_face(3)]), ("train", [])]
    ):
        path = tmp_path / "images" / f"face {index}.jpg"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (240, 200), (index * 40, 90, 120)).save(path)
        records.append(ImageRecord(f"face {index}.jpg", 240, 200, split, tuple(faces)))
    return KeypointDataset(tuple(records), str(tmp_path / "images"))


def _points(dataset: KeypointDataset) -> list[np.ndarray]:
    return [instance.keypoints for record in dataset.images for instance in record.instances]


def test_pts_round_trip_converts_between_one_and_zero_based(tmp_path):
    points = np.arange(136, dtype=float).reshape(68, 2) + 0.25
    write_pts(tmp_path / "a.pts", points)
    assert "n_points: 68" in (tmp_path / "a.pts").read_text()
    assert np.allclose(read_pts(tmp_path / "a.pts"), points, atol=1e-3)
    assert np.allclose(read_pts(tmp_path / "a.pts", one_based=False), points + 1, atol=1e-3)


def test_import_ibug_pts_reads_every_face_beside_the_image(tmp_path):
    Image.new("RGB", (120, 90)).save(tmp_path / "x.png")
    first, second = _face(0).keypoints, _face(5).keypoints
    write_pts(tmp_path / "x.pts", first)
    write_pts(tmp_path / "x_2.pts", second)
    imported = import_ibug_pts([tmp_path / "x.png"], image_root=tmp_path)
    record = imported.images[0]
    assert (record.path, record.width, record.height) == ("x.png", 120, 90)
    assert [i.provenance.is_human for i in record.instances] == [True, True]
    assert np.allclose(record.instances[0].keypoints, first, atol=1e-3)
    assert np.allclose(record.instances[1].keypoints, second, atol=1e-3)


def test_bad_pts_file_is_a_clear_error(tmp_path):
    (tmp_path / "b.pts").write_text("version: 1\nn_points: 5\n{\n1 2\n}\n")
    with pytest.raises(DatasetFormatError, match="expected 68 points"):
        read_pts(tmp_path / "b.pts")


def test_dlib_xml_round_trip(dataset, tmp_path):
    write_dlib_xml(dataset, tmp_path / "faces.xml")
    back = read_dlib_xml(tmp_path / "faces.xml")
    assert [record.path for record in back.images] == [str(dataset.resolve(r)) for r in dataset.images]
    assert [len(r.instances) for r in back.images] == [2, 1, 0]
    for original, restored in zip(_points(dataset), _points(back), strict=True):
        assert np.allclose(original, restored, atol=1e-3)
    assert np.allclose(back.images[0].instances[1].box, dataset.images[0].instances[1].box, atol=1e-3)


def test_dlib_xml_with_missing_parts_is_refused(tmp_path):
    (tmp_path / "f.xml").write_text(
        "<dataset><images><image file='a.jpg' width='10' height='10'>"
        "<box top='1' left='1' width='5' height='5'><part name='00' x='2' y='2'/></box>"
        "</image></images></dataset>"
    )
    with pytest.raises(DatasetFormatError, match="lacks some of the 68 parts"):
        read_dlib_xml(tmp_path / "f.xml")


def test_coco_round_trip_keeps_split_visibility_and_provenance(dataset, tmp_path):
    visibility = np.full(68, 2)
    visibility[5] = 1
    record = dataset.images[1]
    changed = record.with_instances(
        [Instance(record.instances[0].box, record.instances[0].keypoints, visibility)]
    )
    dataset = KeypointDataset((dataset.images[0], changed, dataset.images[2]), dataset.image_root)
    (tmp_path / "coco.json").write_text(json.dumps(to_coco(dataset)))
    back = from_coco(tmp_path / "coco.json")
    assert back.as_dict() == dataset.as_dict()
    assert back.images[0].instances[1].provenance == Provenance("yolo-pose68@c-iter0", 0.91)
    assert back.images[1].instances[0].visibility[5] == 1


def test_yolo_pose_export_round_trip_and_data_yaml(dataset, tmp_path):
    data_yaml = export_yolo_pose(dataset, tmp_path / "yolo")
    text = data_yaml.read_text()
    assert "kpt_shape: [68, 3]" in text
    assert f"flip_idx: [{', '.join(map(str, IBUG68_FLIP_IDX))}]" in text
    # The unlabelled training image is left out: YOLO would learn it as a face-free negative.
    assert len((tmp_path / "yolo" / "train.txt").read_text().split()) == 1
    linked = next((tmp_path / "yolo" / "images" / "train").iterdir())
    assert linked.is_symlink(), "research images must be linked, never copied"
    back = read_yolo_pose(data_yaml)
    assert [len(record.instances) for record in back.images] == [2, 1]
    for original, restored in zip(_points(dataset), _points(back), strict=True):
        assert np.allclose(original, restored, atol=1e-3)
    with pytest.raises(FileExistsError):
        export_yolo_pose(dataset, tmp_path / "yolo")


def test_yolo_label_line_is_normalised():
    points = np.tile([[60.0, 50.0]], (68, 1))
    points[0] = [300.0, 10.0]  # outside a 240-pixel-wide image: not labelled for YOLO
    record = ImageRecord("a.jpg", 240, 200, "train", (Instance((24, 20, 96, 100), points),))
    values = yolo_label_lines(record)[0].split()
    assert len(values) == 5 + 68 * 3
    assert [float(v) for v in values[1:5]] == pytest.approx([0.25, 0.3, 0.3, 0.4])
    assert [float(v) for v in values[5:8]] == pytest.approx([1.0, 0.05, 0])
    assert [float(v) for v in values[8:11]] == pytest.approx([0.25, 0.25, 2])


def test_invalid_provenance_and_instances_are_refused():
    with pytest.raises(ValueError, match="model@version"):
        Provenance(source="yolo")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Provenance(source="m@1", confidence=1.5)
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        Instance((0, 0, 1, 1), np.zeros((5, 2)))


def test_versions_are_written_once_and_hash_checked(dataset, tmp_path):
    store = DatasetStore(tmp_path / "versions")
    first = store.write(dataset, note="initial")
    assert first.name == "v0" and store.versions() == [0]
    assert first.manifest["counts"]["train_instances"] == 2
    assert first.manifest["counts"]["by_source"] == {"human": 2, "yolo-pose68@c-iter0": 1}
    assert store.read(0).as_dict() == dataset.as_dict()
    with pytest.raises(VersionExistsError, match="immutable"):
        store.write(dataset, 0)
    second = store.write(dataset, parent=0)
    assert second.number == 1 and second.manifest["parent"] == 0
    assert first.manifest["sha256"] == second.manifest["sha256"]
    dataset_file = first.path / "dataset.json"
    assert not os.stat(dataset_file).st_mode & stat.S_IWUSR
    dataset_file.chmod(0o644)
    dataset_file.write_text(dataset_file.read_text().replace('"train"', '"val"', 1))
    with pytest.raises(CorruptVersionError):
        store.read(0)


def test_yolo_export_can_set_one_oks_sigma_for_all_points(dataset, tmp_path):
    text = export_yolo_pose(dataset, tmp_path / "yolo", kpt_oks_sigma=0.05).read_text()
    line = next(row for row in text.splitlines() if row.startswith("kpt_oks_sigmas:"))
    assert [float(value) for value in line.split("[")[1].rstrip("]").split(",")] == [0.05] * 68
    with pytest.raises(ValueError, match="positive"):
        export_yolo_pose(dataset, tmp_path / "other", kpt_oks_sigma=0.0)
