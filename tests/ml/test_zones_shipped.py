"""The shipped HRNetV2 zone ensemble: size limit, fp16 weights, loading and one prediction on a real face."""

import json
from pathlib import Path

import numpy as np
import pytest

from ml.zones.models import segmentation_model_dir

MAX_WEIGHTS_BYTES = 25 * 1024 * 1024


def _shipped_dir() -> Path:
    model_dir = segmentation_model_dir()
    if not (model_dir / "ensemble.json").is_file():
        pytest.skip(f"No trained zone ensemble in '{model_dir}'.")
    return model_dir


def test_shipped_weights_are_small_fp16_and_listed() -> None:
    import torch

    model_dir = _shipped_dir()
    config = json.loads((model_dir / "ensemble.json").read_text())
    assert config["crop"] == "face-landmarks" and config["version"]
    for filename in config["weights"]:
        path = model_dir / filename
        assert path.stat().st_size <= MAX_WEIGHTS_BYTES
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}


def test_shipped_ensemble_predicts_33_zones_and_parts_on_a_real_face(face_photo_path: Path) -> None:
    pytest.importorskip("timm", reason="timm is needed to build the HRNetV2 backbone")
    from ml.core.imageio import load_image
    from ml.zones.ensemble import ZoneEnsemble

    image = load_image(face_photo_path)
    prediction = ZoneEnsemble(_shipped_dir()).predict(image)
    assert prediction.face_found
    assert prediction.masks.shape == (33, *image.shape[:2]) and prediction.masks.dtype == bool
    assert prediction.parts.shape == image.shape[:2]
    assert set(np.unique(prediction.parts)) <= set(range(6))
    skin = prediction.parts == 1
    assert skin.mean() > 0.05  # a trained model finds skin on a frontal studio face
    assert sum(bool(mask.any()) for mask in prediction.masks) >= 25
