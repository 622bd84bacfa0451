"""The inpainting normalizer: the hole, the composite, training with checkpoints, candidates."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.normality import inpainting
from ml.normality.scoring import region_mask
from tests.ml.test_normality_evaluation import smooth_face
from tests.ml.test_normality_scoring import synthetic_landmarks

TINY = (4, 8, 8)


def test_hole_covers_the_scoring_region_and_follows_margin_and_shift():
    landmarks = synthetic_landmarks()
    hole = inpainting.hole_mask(landmarks, 128).astype(bool)
    assert np.all(hole[region_mask(landmarks, (128, 128), "mouth_nose")])
    wider = inpainting.hole_mask(landmarks, 128, margin=0.3).astype(bool)
    assert wider.sum() > hole.sum() and np.all(wider[hole])
    moved = inpainting.hole_mask(landmarks, 128, shift=(0.0, 0.2)).astype(bool)
    assert np.nonzero(moved)[0].mean() > np.nonzero(hole)[0].mean()
    with pytest.raises(ValueError, match="68, 2"):
        inpainting.hole_mask(np.zeros((5, 2)), 128)


def test_composite_keeps_every_pixel_outside_the_hole():
    torch.manual_seed(0)
    model = inpainting.InpaintingNet(size=32, channels=TINY).eval()
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    hole = torch.zeros(2, 1, 32, 32)
    hole[:, :, 10:20, 8:24] = 1
    with torch.no_grad():
        composite = model(image, hole)
    assert torch.equal(composite[:, :, hole[0, 0] == 0], image[:, :, hole[0, 0] == 0])
    assert not torch.allclose(composite[:, :, 10:20, 8:24], image[:, :, 10:20, 8:24])


def test_training_resumes_from_its_checkpoint_and_saved_weights_are_half_precision(tmp_path: Path):
    faces = np.stack([smooth_face(i) for i in range(4)])[:, ::4, ::4]
    landmarks = np.stack([synthetic_landmarks() / 4] * 4)
    state = inpainting.InpaintingCheckpoint(
        inpainting.InpaintingNet(size=32, channels=TINY),
        None,
        0,
        0.0,
        [],  # type: ignore[arg-type]
    )
    state.optimizer = torch.optim.Adam(state.model.parameters(), lr=1e-3)
    saved = []
    checkpoint = tmp_path / "state.pt"

    def keep(current: inpainting.InpaintingCheckpoint) -> None:
        inpainting.save_checkpoint(current, checkpoint)
        saved.append(current.step)

    inpainting.train_inpainter(faces, landmarks, state, max_seconds=1.0, batch_size=2, on_checkpoint=keep)
    assert state.step > 0 and saved[-1] == state.step and state.seconds >= 1.0
    resumed = inpainting.load_checkpoint(checkpoint, 1e-3)
    assert resumed.step == state.step and resumed.seconds == pytest.approx(state.seconds)
    # The budget is already spent: resuming trains no further step.
    inpainting.train_inpainter(faces, landmarks, resumed, max_seconds=1.0, batch_size=2)
    assert resumed.step == state.step
    weights = tmp_path / "inpainting.pt"
    inpainting.save_inpainter(resumed.model, weights, {"training": {"steps": resumed.step}})
    payload = torch.load(weights, weights_only=True)
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())
    model, metadata = inpainting.load_inpainter(weights)
    assert metadata["training"]["steps"] == resumed.step and model.size == 32
    with pytest.raises(FileNotFoundError, match="train-inpainter"):
        inpainting.load_inpainter(tmp_path / "absent.pt")


def test_candidates_differ_only_inside_their_holes():
    torch.manual_seed(0)
    normalizer = inpainting.InpaintingNormalizer(inpainting.InpaintingNet(size=128, channels=(4, 8, 8, 8, 8)))
    face, landmarks = smooth_face(), synthetic_landmarks()
    w_raw, candidates = normalizer.candidates(face, 3, landmarks=landmarks)
    assert len(candidates) == 3 and w_raw.shape == (8,)
    for candidate, margin in zip(candidates, inpainting.CANDIDATE_MARGINS, strict=False):
        outside = ~inpainting.hole_mask(landmarks, 128, margin).astype(bool)
        assert np.array_equal(candidate.image[outside], face[outside])
        assert np.all(np.abs(candidate.w_norm) <= 1)
    assert not np.array_equal(candidates[0].w_norm, w_raw)
    with pytest.raises(ValueError, match="candidates"):
        normalizer.candidates(face, 9, landmarks=landmarks)


def test_a_new_run_starts_from_saved_half_precision_weights_with_a_fresh_optimizer(tmp_path: Path):
    torch.manual_seed(0)
    trained = inpainting.InpaintingNet(size=32, channels=TINY)
    weights = tmp_path / "inpainting.pt"
    inpainting.save_inpainter(trained, weights, {"training": {"steps": 536}})

    state = inpainting.checkpoint_from_weights(weights, 1e-3)

    assert state.step == 0 and state.seconds == 0.0 and state.losses == []
    assert state.origin["weights"] == "inpainting.pt" and state.origin["training"]["steps"] == 536
    assert len(state.origin["sha256"]) == 64
    assert not state.optimizer.state_dict()["state"]  # no moments carried over
    parameters = dict(state.model.named_parameters())
    for name, value in trained.state_dict().items():
        loaded = state.model.state_dict()[name]
        assert loaded.dtype == torch.float32
        assert torch.equal(loaded, value.half().float())
    assert all(p.dtype == torch.float32 for p in parameters.values())

    faces = np.stack([smooth_face(i) for i in range(4)])[:, ::4, ::4]
    landmarks = np.stack([synthetic_landmarks() / 4] * 4)
    checkpoint = tmp_path / "state.pt"
    inpainting.train_inpainter(
        faces,
        landmarks,
        state,
        max_seconds=0.5,
        batch_size=2,
        warmup_steps=10,
        score_time_fraction=0.5,
        on_checkpoint=lambda current: inpainting.save_checkpoint(current, checkpoint),
    )
    assert state.step > 0
    resumed = inpainting.load_checkpoint(checkpoint, 1e-3)
    assert resumed.origin == state.origin and resumed.step == state.step


def test_the_shipped_weights_can_seed_a_longer_run():
    from ml.normality.models import inpainting_weights_path

    shipped = inpainting_weights_path()
    if not shipped.is_file():
        pytest.skip(f"no shipped inpainting weights at {shipped}")
    state = inpainting.checkpoint_from_weights(shipped, 1e-3)
    assert state.model.size == 128 and state.origin["training"]["steps"] > 0
    assert all(p.dtype == torch.float32 for p in state.model.parameters())


def test_score_time_holes_are_exactly_the_candidate_holes():
    landmarks = np.stack([synthetic_landmarks()] * 6)
    rng = np.random.default_rng(0)
    holes = inpainting.random_holes(landmarks, 128, np.zeros(6, dtype=bool), rng, score_time_fraction=1.0)
    candidates = [inpainting.hole_mask(landmarks[0], 128, margin) for margin in inpainting.CANDIDATE_MARGINS]
    for hole in holes[:, 0].numpy():
        assert any(np.array_equal(hole, candidate) for candidate in candidates)


def test_annotated_faces_leave_out_the_excluded_photos(tmp_path: Path):
    import json

    import cv2

    images = tmp_path / "landmarks300w" / "images"
    images.mkdir(parents=True)
    landmarks = synthetic_landmarks().tolist()
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(images / name), np.full((600, 600, 3), 160, dtype=np.uint8))
    (tmp_path / "landmarks300w" / "landmarks.json").write_text(
        json.dumps({"faces": {"images/a.jpg": landmarks, "images/b.jpg": landmarks}})
    )
    faces, points, sources = inpainting.annotated_faces(tmp_path, 32, exclude=["landmarks300w/images/b.jpg"])
    assert sources == [str(images / "a.jpg")]
    assert faces.shape == (1, 32, 32, 3) and points.shape == (1, 68, 2)
    assert len(inpainting.annotated_faces(tmp_path, 32)[2]) == 2
