"""Landmark-geometry wrinkle typing: the class regions, the rules on a drawn wrinkle mask, the
Ultralytics-compatible mAP, the default type detector and the per-type figures."""

from __future__ import annotations

import numpy as np
import pytest

from ml.wrinkles.analysis import WrinkleLines, wrinkle_figures
from ml.wrinkles.type_geometry import (
    TYPE_CLASSES,
    ClassRule,
    FaceFrame,
    GeometryTypeDetector,
    TypeEvidence,
    TypeRules,
    class_regions,
    type_regions,
)
from ml.wrinkles.types import best_f1_threshold, detection_metrics
from ml.zones.landmark_model import render_face_parts, render_zone_masks
from ml.zones.render import mean_shape

SHAPE = (960, 800)


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean-shape landmarks at twice the atlas size, their zones and their skin."""
    from ml.wrinkles.analysis import skin_mask

    landmarks = mean_shape() * 2
    return landmarks, render_zone_masks(landmarks, SHAPE), skin_mask(render_face_parts(landmarks, SHAPE))


def _evidence(face, wrinkles: np.ndarray) -> TypeEvidence:
    landmarks, zones, skin = face
    return TypeEvidence(landmarks, wrinkles & skin, skin, zones)


def test_each_class_region_lies_where_its_lines_are(face) -> None:
    landmarks, zones, skin = face
    frame = FaceFrame(landmarks)
    centres = {}
    for name in TYPE_CLASSES:
        regions = class_regions(name, landmarks, SHAPE, zones)
        assert all((region & skin).any() for region in regions), name
        centres[name] = [
            frame.to_frame(np.argwhere(region)[:, ::-1].mean(axis=0)[None])[0] for region in regions
        ]
    # Bilateral classes have one region per side, mirrored about the face's midline.
    for name in ("crows_feet", "gummy_smile", "masseter", "sad_smile"):
        (right, left) = centres[name]
        assert (
            right[0] < -0.2
            and left[0] > 0.2
            and abs(right[0] + left[0]) < 0.05
            and abs(right[1] - left[1]) < 0.05
        )
    # Eye line at y = 0, chin downwards (IPD units): forehead and glabella above, mouth-area types below.
    assert centres["forehead"][0][1] < -0.5 and abs(centres["forehead"][0][0]) < 0.05
    assert -0.5 < centres["frown_line"][0][1] < 0.1 and abs(centres["frown_line"][0][0]) < 0.05
    assert abs(centres["crows_feet"][0][1]) < 0.15 and abs(centres["crows_feet"][0][0]) > 0.6
    assert centres["chin"][0][1] > centres["smoker_lines"][0][1] > centres["bunny_line"][0][1] > 0
    assert centres["sad_smile"][0][1] > centres["gummy_smile"][0][1]


def test_a_line_drawn_on_the_forehead_is_a_forehead_line_with_its_box(face) -> None:
    landmarks = face[0]
    brow_top = landmarks[17:27, 1].min()
    wrinkles = np.zeros(SHAPE, dtype=bool)
    row = int(brow_top - 60)
    wrinkles[row : row + 3, 340:460] = True
    rules = TypeRules({name: ClassRule(0.0, "lines", 0.001, 0.1) for name in TYPE_CLASSES})
    found = GeometryTypeDetector(rules).detect(np.zeros((*SHAPE, 3), np.uint8), _evidence(face, wrinkles))
    assert [item["class"] for item in found] == ["forehead"]
    assert found[0]["box"] == [340.0, float(row), 460.0, float(row + 3)]
    assert 0 < found[0]["score"] < 1
    # The region box mode boxes the whole region; a higher threshold hides the type.
    region_rules = TypeRules({"forehead": ClassRule(0.0, "region", 0.001, 0.1)})
    box = GeometryTypeDetector(region_rules).detect(np.zeros(1), _evidence(face, wrinkles))[0]["box"]
    assert box[0] < 340 and box[2] > 460 and box[3] < landmarks[17:27, 1].max()
    # Anchored boxes keep the line's centre and take the class's typical size (in IPD).
    ipd = FaceFrame(landmarks).ipd
    anchored = TypeRules({"forehead": ClassRule(0.0, "anchored-lines", 0.001, 0.1, (0.5, 0.2))})
    box = GeometryTypeDetector(anchored).detect(np.zeros(1), _evidence(face, wrinkles))[0]["box"]
    assert box == pytest.approx(
        [400 - 0.25 * ipd, row + 1.5 - 0.1 * ipd, 400 + 0.25 * ipd, row + 1.5 + 0.1 * ipd]
    )
    strict = TypeRules({"forehead": ClassRule(0.0, "lines", 0.001, 0.999)})
    assert GeometryTypeDetector(strict).detect(np.zeros(1), _evidence(face, wrinkles)) == []
    with pytest.raises(ValueError):
        GeometryTypeDetector(rules).detect(np.zeros(1))


def test_anchored_boxes_are_cut_to_the_photo(face) -> None:
    rule = ClassRule(0.0, "anchored-lines", 0.001, 0.1, (0.5, 0.2))
    assert rule.final_box([0.0, 5.0, 10.0, 15.0], 100.0, (50, 60)) == [0.0, 0.0, 30.0, 20.0]
    landmarks = face[0]
    wrinkles = np.zeros(SHAPE, dtype=bool)
    row = int(landmarks[17:27, 1].min() - 60)
    wrinkles[row : row + 3, 340:460] = True
    wide = TypeRules({"forehead": ClassRule(0.0, "anchored-lines", 0.001, 0.1, (20.0, 0.2))})
    box = GeometryTypeDetector(wide).detect(np.zeros(1), _evidence(face, wrinkles))[0]["box"]
    assert box[0] == 0.0 and box[2] == SHAPE[1]


def test_types_found_in_a_coarser_frame_have_their_boxes_in_photo_pixels(face) -> None:
    from ml.wrinkles.crop import AnalysisFrame, ForeheadEyeCrop

    landmarks, _, skin = face
    wrinkles = np.zeros(SHAPE, dtype=bool)
    row = int(landmarks[17:27, 1].min() - 60)
    wrinkles[row : row + 3, 340:460] = True
    frame = AnalysisFrame.of(ForeheadEyeCrop(x1=-80.0, y1=0.0, x2=880.0, y2=960.0), SHAPE)
    assert frame.crop is not None and frame.photo_px == pytest.approx(1.5)
    points = frame.points(landmarks)
    evidence = TypeEvidence(
        points,
        frame.from_photo(wrinkles & skin),
        frame.from_photo(skin),
        render_zone_masks(points, frame.shape),
        frame,
    )
    assert evidence.photo_ipd == pytest.approx(FaceFrame(landmarks).ipd)
    rules = TypeRules({name: ClassRule(0.0, "lines", 0.001, 0.1) for name in TYPE_CLASSES})
    found = GeometryTypeDetector(rules).detect(np.zeros(1), evidence)
    assert [item["class"] for item in found] == ["forehead"]
    assert found[0]["box"] == pytest.approx([340.0, float(row), 460.0, float(row + 3)], abs=1.5)


def test_type_region_figures_never_exceed_the_whole(face) -> None:
    rng = np.random.default_rng(0)
    wrinkles = rng.random(SHAPE) > 0.97
    evidence = _evidence(face, wrinkles)
    lines = WrinkleLines.of(evidence.wrinkles)
    whole = wrinkle_figures(lines, evidence.skin)
    regions = type_regions(evidence)
    assert list(regions) == list(TYPE_CLASSES)
    for region in regions.values():
        row = wrinkle_figures(lines, region)
        assert 0 < row["region_px"] <= whole["region_px"]
        assert row["area_px"] <= whole["area_px"] and row["total_length_px"] <= whole["total_length_px"]
        assert row["area_fraction"] == pytest.approx(row["area_px"] / row["region_px"])


def test_detection_metrics_follow_ultralytics_matching() -> None:
    names = {0: "bunny_line", 1: "chin"}
    truth = [(0, [0.0, 0.0, 10.0, 10.0]), (1, [20.0, 20.0, 30.0, 30.0])]
    perfect = detection_metrics([([(0, 0.9, [0, 0, 10, 10]), (1, 0.8, [20, 20, 30, 30])], truth)], names)
    assert perfect["map50"] == pytest.approx(1.0, abs=0.01) and perfect["map50_95"] == pytest.approx(
        1.0, abs=0.01
    )
    # IoU 0.25 (half the box each way) is no match; the wrong class at the right place neither.
    shifted = [(0, 0.9, [5, 5, 15, 15]), (0, 0.8, [20, 20, 30, 30])]
    missed = detection_metrics([(shifted, truth)], names)
    assert missed["map50"] == pytest.approx(0.0, abs=1e-6)
    assert [row["boxes"] for row in missed["per_class"]] == [1, 1]
    # One of two bunny-line boxes found, ranked first: AP50 of the class about 0.5.
    two = [(0, [0.0, 0.0, 10.0, 10.0]), (0, [40.0, 40.0, 50.0, 50.0])]
    half = detection_metrics([([(0, 0.9, [0, 0, 10, 10])], two)], {0: "bunny_line"})
    assert half["per_class"][0]["map50"] == pytest.approx(0.5, abs=0.02)


def test_the_display_threshold_is_the_best_f1_confidence() -> None:
    truth = [(0, [0.0, 0.0, 10.0, 10.0])]
    photos = [([(0, 0.9, [0, 0, 10, 10]), (0, 0.3, [50, 50, 60, 60])], truth)]
    assert best_f1_threshold(photos, 0) == pytest.approx(0.9)
    assert best_f1_threshold([([(0, 0.3, [50, 50, 60, 60])], truth)], 0) == 1.0


def test_rules_round_trip_through_their_file(tmp_path) -> None:
    rules = TypeRules(
        {
            "chin": ClassRule(0.1, "pixels", 0.02, 0.4),
            "forehead": ClassRule(0.0, "anchored-clusters", 0.01, 0.5, (0.4, 0.25)),
        },
        {"split": "train"},
    )
    path = tmp_path / "rules.json"
    path.write_text(rules.to_json())
    assert TypeRules.read(path) == rules


def test_the_default_type_detector_is_the_best_trained_one(monkeypatch) -> None:
    from ml.model_names import WRINKLE_TYPES_GEOMETRY, WRINKLE_TYPES_YOLO
    from ml.registry import registry
    from ml.wrinkles import models

    cards = {
        WRINKLE_TYPES_GEOMETRY: {"name": WRINKLE_TYPES_GEOMETRY, "trained": True, "metrics": {"map50": 0.02}},
        WRINKLE_TYPES_YOLO: {"name": WRINKLE_TYPES_YOLO, "trained": False, "metrics": {}},
    }
    monkeypatch.setattr(registry, "describe", lambda name, weights=None: cards[name])
    assert models.default_type_model() == WRINKLE_TYPES_GEOMETRY
    cards[WRINKLE_TYPES_YOLO] = {"name": WRINKLE_TYPES_YOLO, "trained": True, "metrics": {"map50": 0.4}}
    assert models.default_type_model() == WRINKLE_TYPES_YOLO
    for card in cards.values():
        card["trained"] = False
    assert models.default_type_model() is None


def test_the_analysis_of_a_real_photo_reports_the_installed_rules_types_and_per_type_figures(
    data_dir,
) -> None:
    from ml.core.imageio import load_image
    from ml.model_names import WRINKLE_TYPES_GEOMETRY
    from ml.wrinkles.analysis import analyze_wrinkles
    from ml.wrinkles.models import GEOMETRY_RULES_FILE

    assert GEOMETRY_RULES_FILE.is_file(), "the geometry rules are shipped"
    image = load_image(data_dir / "wrinkle-boxes" / "images" / "1037.jpg")
    data = analyze_wrinkles(image).data
    types = data["types"]
    assert (
        types["model"]["name"] == WRINKLE_TYPES_GEOMETRY
        and types["model"]["method"] == "landmark geometry rules"
    )
    assert 0 < types["model"]["map50_val"] < 1
    rules = TypeRules.read(GEOMETRY_RULES_FILE).rules
    assert types["found"], "a photo with marked wrinkles gets some type"
    for item in types["found"]:
        assert item["class"] in TYPE_CLASSES and item["score"] >= rules[item["class"]].threshold
        x0, y0, x1, y1 = item["box"]
        assert x0 < x1 and y0 < y1
    overall = data["overall"]
    assert [row["class"] for row in data["type_regions"]] == list(TYPE_CLASSES)
    for row in data["type_regions"]:
        assert row["area_px"] <= overall["area_px"] and row["region_px"] <= overall["region_px"]
