"""BlazeFace and FaceMesh written from the converted MediaPipe state dicts; the 468→68 mapping; mesh pose."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.core.face_crop import Roi, extract_crop, to_image
from ml.core.imageio import load_image
from ml.core.metrics import box_iou, normalized_mean_error
from ml.core.pose import rotation_from_pose
from ml.landmarks.mediapipe_nets import BlazeFaceNet, FaceMeshNet
from ml.landmarks.mesh import (
    BlazeFaceDetector,
    FaceMeshLandmarker,
    MeshTo68,
    mediapipe_weights_dir,
    mesh_geometry,
    mesh_to_68,
    pose_from_mesh,
)


@pytest.mark.parametrize(
    ("network", "filename"), [(BlazeFaceNet, "blazeface.pth"), (FaceMeshNet, "blazeface_landmark.pth")]
)
def test_the_networks_take_every_weight_of_the_state_dicts(network, filename):
    state = torch.load(mediapipe_weights_dir() / filename, map_location="cpu", weights_only=True)
    model = network()
    assert model.load_state_dict(state, strict=True).missing_keys == []
    size = model.input_size
    with torch.inference_mode():
        first, second = model.eval()(torch.zeros(2, 3, size, size))
    if network is BlazeFaceNet:
        assert first.shape == (2, 896, 16) and second.shape == (2, 896)
    else:
        assert first.shape == (2, 468, 3) and second.shape == (2,)


def test_the_shipped_mapping_is_a_partition_of_unity():
    mapping = mesh_to_68()
    assert mapping.indices.shape[0] == 68 and "landmarks300w train" in mapping.source
    np.testing.assert_allclose(mapping.weights.sum(axis=1), 1.0, atol=1e-5)


def test_the_mapping_commutes_with_similarity_transforms():
    mapping = mesh_to_68()
    mesh = np.random.default_rng(1).normal(size=(468, 3)) * 40 + 200
    angle = np.radians(20)
    rotation = 1.7 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = mesh.copy()
    moved[:, :2] = mesh[:, :2] @ rotation.T + [13.0, -7.0]
    # weights are stored to 6 decimals: they sum to one within 1e-6
    np.testing.assert_allclose(mapping(moved), mapping(mesh) @ rotation.T + [13.0, -7.0], atol=1e-3)


def test_mapping_refuses_weights_that_do_not_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        MeshTo68(np.zeros((68, 2), int), np.full((68, 2), 0.4))


def test_a_crop_maps_back_to_the_image():
    image = np.zeros((400, 600, 3), np.uint8)
    image[190:211, 290:311] = 255  # a white square centred at (300, 200)
    roi = Roi(centre=(300.0, 200.0), side=100.0, angle=np.radians(30))
    crop, crop_to_image = extract_crop(image, roi, 50)
    assert crop[25, 25].min() == 255 and crop[2, 2].max() == 0
    np.testing.assert_allclose(to_image(np.array([[25.0, 25.0]]), crop_to_image), [[300.0, 200.0]], atol=1e-9)


def test_reducing_a_large_face_first_keeps_the_geometry():
    image = np.zeros((3000, 4000, 3), np.uint8)
    image[1480:1521, 1980:2021] = 255
    crop, crop_to_image = extract_crop(image, Roi((2000.0, 1500.0), 1600.0, 0.0), 192)
    peak = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    assert abs(peak[0] - 96) <= 2 and abs(peak[1] - 96) <= 2
    np.testing.assert_allclose(
        to_image(np.array([[96.0, 96.0]]), crop_to_image), [[2000.0, 1500.0]], atol=1e-6
    )


def test_mesh_pose_recovers_a_rotated_reference():
    geometry = mesh_geometry()
    assert 1.0 <= geometry.depth_gain <= 2.5
    for yaw, pitch, roll in [(0, 0, 0), (35, -10, 5), (-50, 12, -8)]:
        posed = geometry.reference @ rotation_from_pose(yaw, pitch, roll).T * 20 + [320, 240, 0]
        posed[:, 2] /= geometry.depth_gain  # FaceMesh's compressed depth
        pose = pose_from_mesh(posed, geometry)
        assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((yaw, pitch, roll), abs=1e-6)


def test_the_reference_surface_is_mirror_symmetric():
    geometry = mesh_geometry()
    mirrored = geometry.reference[geometry.mirror] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(mirrored, geometry.reference, atol=1e-6)


@pytest.fixture(scope="module")
def landmarks68(data_dir: Path) -> dict[str, np.ndarray]:
    path = data_dir / "landmarks68" / "landmarks.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return {
        Path(name).stem: np.asarray(points) for name, points in json.loads(path.read_text())["faces"].items()
    }


@pytest.mark.data
@pytest.mark.parametrize("name", ["lenna", "takeo"])
def test_facemesh_lands_on_a_known_face(name, data_dir, landmarks68):
    truth = landmarks68[name]
    faces = FaceMeshLandmarker().detect(load_image(data_dir / "landmarks68" / "images" / f"{name}.jpg"))
    assert len(faces) == 1 and faces[0].mesh.shape == (468, 3)
    nme = normalized_mean_error(faces[0].landmarks, truth)
    print(f"\nFaceMesh mapped-68 NME {name}: {nme:.4f}")
    assert nme <= 0.06
    low, high = truth.min(axis=0), truth.max(axis=0)
    inside = np.all(
        (faces[0].mesh[:, :2] > low - 0.3 * (high - low))
        & (faces[0].mesh[:, :2] < high + 0.3 * (high - low)),
        axis=1,
    )
    assert inside.mean() > 0.98


@pytest.mark.data
def test_blazeface_finds_a_portrait(data_dir, landmarks68):
    truth = landmarks68["lenna"]
    faces = BlazeFaceDetector().detect(load_image(data_dir / "landmarks68" / "images" / "lenna.jpg"))
    assert faces and faces[0].score > 0.75
    assert box_iou(faces[0].box, (*truth.min(axis=0), *truth.max(axis=0))) > 0.4
    right_eye, left_eye = faces[0].points[0], faces[0].points[1]
    assert right_eye[0] < left_eye[0]
