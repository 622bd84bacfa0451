"""scripts/dlib_einstein_study.py: its candidate box sets and contrast helper, and its shipped row is the
default path (so the report's comparison is against what ships)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "dlib_einstein_study.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("dlib_einstein_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_box_sets_are_fixed_designs_around_one_centre(study):
    from ml.core.landmarks import BOX_JITTER

    sets = study.jitter_sets()
    assert sets == study.jitter_sets()  # deterministic: no random draws
    assert {name: len(boxes) for name, boxes in sets.items()} == {
        "shipped 2×2 (4)": 4,
        "one box (1)": 1,
        "centre + 2^(3-1), ±5 % / ±0.05 (5)": 5,
        "centre + 2^3, ±5 % / ±0.05 (9)": 9,
        "3×3 side × height, ±5 % / ±0.05 (9)": 9,
        "centre + 2^3, ±10 % / ±0.1 (9)": 9,
    }
    assert sets["shipped 2×2 (4)"] == [(side, 0.0, shift) for side, shift in BOX_JITTER]
    for boxes in sets.values():
        # every design is balanced about the shipped grid's centre
        np.testing.assert_allclose(np.mean(boxes, axis=0), study.CENTRE, atol=0.003)
    half = np.asarray(sets["centre + 2^(3-1), ±5 % / ±0.05 (5)"][1:]) - study.CENTRE
    # a resolution-III fraction: each factor balanced, no two factors aliased with each other
    np.testing.assert_allclose(half.sum(axis=0), 0.0, atol=1e-12)
    signs = np.sign(half)
    assert all(signs[:, i] @ signs[:, j] == 0 for i in range(3) for j in range(i + 1, 3))


def test_contrast_stretch_spans_the_box_and_none_is_the_input(study):
    rng = np.random.default_rng(0)
    image = rng.integers(100, 140, size=(64, 64, 3), dtype=np.uint8)
    assert study.normalise_contrast(image, (16, 16, 48, 48), "none") is image
    stretched = study.normalise_contrast(image, (16, 16, 48, 48), "stretch")
    assert stretched.shape == image.shape and stretched.dtype == np.uint8
    inside = stretched[16:48, 16:48, 0]
    assert inside.min() == 0 and inside.max() == 255
    assert np.array_equal(stretched[..., 0], stretched[..., 2])  # grey in three channels
    with pytest.raises(ValueError):
        study.normalise_contrast(image, (16, 16, 48, 48), "sharpen")


@pytest.mark.data
def test_the_shipped_row_is_the_default_path(study, data_dir):
    from ml.core.imageio import load_image
    from ml.registry import registry

    image = load_image(data_dir / "landmarks68" / "images" / "takeo.jpg")
    shipped = study.study_landmarker(study.jitter_sets()["shipped 2×2 (4)"], "none")
    default = registry.load("dlib-68")
    ours, theirs = shipped.detect(image), default.detect(image)
    assert len(ours) == len(theirs) >= 1
    np.testing.assert_allclose(ours[0].landmarks, theirs[0].landmarks)
