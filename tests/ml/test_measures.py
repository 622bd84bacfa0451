"""ml.measures: landmark measures, statistics against pingouin/statsmodels reference values, the
comparability checks and the noise-floor arithmetic. Landmarks here are the human labels of
landmarks68 or the atlas's mean shape; synthetic edits are marked as such."""

import json
import math

import numpy as np
import pingouin as pg
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ml.core.alignment import apply_transform
from ml.measures.catalogue import definition, group_keys, noise_floors, photo_measures
from ml.measures.comparability import PhotoFigures, assess_pair, pair_figures, shipped_limits, warnings_for
from ml.measures.facial import LANDMARK_MEASURES, face_frame, facial_measures
from ml.measures.noise import RC_FACTOR, Perturbation, repeatability, rephotograph
from ml.measures.statistics import adjust, between_arms, paired_change, rank_biserial
from ml.wrinkles.type_geometry import TYPE_CLASSES
from ml.zones.atlas import ZONES
from ml.zones.render import mean_shape

FRONTAL_POSE = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}


def similarity(points: np.ndarray, scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    angle = math.radians(degrees)
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return apply_transform(np.hstack([rotation, np.array(shift)[:, None]]), points)


# Landmark measures -------------------------------------------------------------------------------------


def test_every_landmark_measure_has_a_definition_and_a_value():
    measures = facial_measures(mean_shape())
    assert set(measures) == set(LANDMARK_MEASURES)
    assert all(np.isfinite(value) for value in measures.values())


def test_measures_do_not_depend_on_position_rotation_or_photo_scale():
    shape = mean_shape()
    moved = similarity(shape, 2.7, 11.0, (-40.0, 300.0))
    for key, value in facial_measures(shape).items():
        assert facial_measures(moved)[key] == pytest.approx(value, abs=1e-9), key


def test_face_frame_puts_the_eyes_on_the_x_axis_one_unit_apart():
    frame, ipd = face_frame(similarity(mean_shape(), 1.0, -20.0, (5.0, 5.0)))
    right_eye, left_eye = frame[36:42].mean(axis=0), frame[42:48].mean(axis=0)
    assert right_eye == pytest.approx([-0.5, 0.0], abs=1e-9) and left_eye == pytest.approx(
        [0.5, 0.0], abs=1e-9
    )
    assert ipd > 0


def test_a_symmetric_face_has_no_asymmetry_and_a_raised_corner_creates_some():
    shape = mean_shape()  # the atlas's symmetrised mean shape
    symmetric = facial_measures(shape)
    assert symmetric["asymmetry_overall"] < 1e-3 and abs(symmetric["commissure_height_difference"]) < 1e-3
    edited = shape.copy()
    _, ipd = face_frame(shape)
    edited[54, 1] -= 0.05 * ipd  # SYNTHETIC: the subject's left mouth corner raised by 0.05 IPD
    changed = facial_measures(edited)
    # right corner height minus left corner height: the left corner is now higher
    assert changed["commissure_height_difference"] == pytest.approx(-0.05, abs=1e-3)
    assert changed["commissure_drop_left"] == pytest.approx(
        symmetric["commissure_drop_left"] - 0.05, abs=1e-3
    )
    assert changed["asymmetry_mouth"] > 10 * symmetric["asymmetry_mouth"]


def test_fuller_upper_lip_raises_its_height_and_area():
    shape = mean_shape()
    _, ipd = face_frame(shape)
    filled = shape.copy()
    filled[49:54, 1] -= 0.03 * ipd  # SYNTHETIC: the upper lip's outline moved up by 0.03 IPD
    before, after = facial_measures(shape), facial_measures(filled)
    assert after["upper_vermilion_height"] - before["upper_vermilion_height"] == pytest.approx(0.03, abs=1e-6)
    assert after["upper_vermilion_area"] > before["upper_vermilion_area"]
    assert after["lower_vermilion_area"] == pytest.approx(before["lower_vermilion_area"])
    assert after["vermilion_area"] > before["vermilion_area"]


def test_measures_need_68_finite_points():
    with pytest.raises(ValueError, match="68 finite"):
        facial_measures(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="coincide"):
        facial_measures(np.zeros((68, 2)))
    degenerate = {"faces": [{"box": [0, 0, 1, 1], "score": 1.0, "landmarks": np.zeros((68, 2)).tolist()}]}
    assert photo_measures(landmarks=degenerate, normality={"score": 1.0}) == {"normality_score": 1.0}


def test_mm_conversion_of_lengths_and_areas():
    assert definition("mouth_width").in_mm(0.8, 63) == pytest.approx(50.4)
    assert definition("vermilion_area").in_mm(0.1, 60) == pytest.approx(360.0)
    assert definition("vermilion_area").unit_label(60) == "mm²"
    assert definition("zone_area:FFA").unit_label(60) == "ratio"
    assert definition("wrinkle_area:FFA").unit_label(60) == "%"
    assert definition("wrinkle_area:FFA").in_mm(2.5, 60) == 2.5


def test_photo_measures_read_every_result_kind():
    face = {"box": [0, 0, 400, 480], "score": 1.0, "landmarks": mean_shape().tolist(), "pose": FRONTAL_POSE}
    zones = {
        "zones": [
            {"abbreviation": "FFA", "face_fraction": 0.12},
            {"abbreviation": "LTA", "face_fraction": 0.02},
        ]
    }
    wrinkles = {
        "zones": [
            {
                "abbreviation": "FFA",
                "area_fraction": 0.05,
                "total_length_px": 90.0,
                "zone_area_px": 1000,
                "wrinkle_area_px": 50,
            },
            {
                "abbreviation": "LOC",
                "area_fraction": 0.01,
                "total_length_px": 9.0,
                "zone_area_px": 1000,
                "wrinkle_area_px": 10,
            },
        ]
    }
    normality = {"score": -1.2, "rating": {"value": 4.5}}
    measures = photo_measures(
        landmarks={"faces": [face]},
        zones=zones,
        wrinkles=wrinkles,
        normality=normality,
        zones_of_interest=["FFA", "LOC"],
    )
    _, ipd = face_frame(mean_shape())
    assert measures["zone_area:FFA"] == 0.12 and "zone_area:LTA" not in measures
    assert measures["wrinkle_area:FFA"] == pytest.approx(5.0)
    assert measures["wrinkle_length:FFA"] == pytest.approx(90.0 / ipd)
    assert measures["wrinkle_area:interest"] == pytest.approx(100 * 60 / 2000)
    assert measures["normality_score"] == -1.2 and measures["normality_rating"] == 4.5
    assert "upper_vermilion_height" in measures


def test_per_type_wrinkle_figures_are_measures_of_every_line_type():
    face = {"box": [0, 0, 400, 480], "score": 1.0, "landmarks": mean_shape().tolist(), "pose": FRONTAL_POSE}
    wrinkles = {
        "zones": [],
        "type_regions": [
            {"class": "forehead", "region_px": 4000, "area_fraction": 0.025, "total_length_px": 120.0},
            {"class": "crows_feet", "region_px": 900, "area_fraction": 0.0, "total_length_px": 0},
            # A region off the analysed skin (outside the model's square) has no figure, not a zero.
            {"class": "chin", "region_px": 0, "area_fraction": 0.0, "total_length_px": 0},
        ],
    }
    measures = photo_measures(landmarks={"faces": [face]}, wrinkles=wrinkles)
    _, ipd = face_frame(mean_shape())
    assert measures["wrinkle_type_area:forehead"] == pytest.approx(2.5)
    assert measures["wrinkle_type_length:forehead"] == pytest.approx(120.0 / ipd)
    assert measures["wrinkle_type_area:crows_feet"] == 0.0
    assert "wrinkle_type_area:chin" not in measures and "wrinkle_type_length:chin" not in measures
    # Without landmarks there is no IPD: the area stays, the length (in IPD) is left out.
    assert set(photo_measures(wrinkles=wrinkles)) == {
        "wrinkle_type_area:forehead",
        "wrinkle_type_area:crows_feet",
    }
    area = definition("wrinkle_type_area:crows_feet")
    assert area.group == "wrinkle_types" and area.unit == "%" and "Crow's feet" in area.label
    assert definition("wrinkle_type_length:sad_smile").unit_label(63) == "mm"
    assert len(group_keys("wrinkle_types")) == 2 * len(TYPE_CLASSES)
    with pytest.raises(KeyError):
        definition("wrinkle_type_area:eyebrow")


def test_group_keys_cover_every_measure_a_photo_gets_in_its_group():
    face = {"box": [0, 0, 400, 480], "score": 1.0, "landmarks": mean_shape().tolist(), "pose": FRONTAL_POSE}
    zones = {"zones": [{"abbreviation": zone.abbreviation, "face_fraction": 0.01} for zone in ZONES]}
    wrinkles = {
        "zones": [
            {"abbreviation": zone.abbreviation, "area_fraction": 0.05, "total_length_px": 9.0}
            | {"zone_area_px": 1000, "wrinkle_area_px": 50}
            for zone in ZONES
        ],
        "type_regions": [
            {"class": name, "region_px": 500, "area_fraction": 0.02, "total_length_px": 7.0}
            for name in TYPE_CLASSES
        ],
    }
    measures = photo_measures(
        landmarks={"faces": [face]},
        zones=zones,
        wrinkles=wrinkles,
        normality={"score": -1.2, "rating": {"value": 4.5}},
        zones_of_interest=[zone.abbreviation for zone in ZONES],
    )
    groups = {definition(key).group for key in measures}
    assert {"lips", "wrinkles", "wrinkle_types", "zones", "normality"} <= groups
    for group in groups:
        in_group = {key for key in measures if definition(key).group == group}
        assert in_group <= set(group_keys(group)), group
        assert all(definition(key).group == group for key in group_keys(group))


# Statistics against reference implementations ------------------------------------------------------------

PRE = np.array([4.1, 3.8, 5.0, 4.4, 3.9, 4.7, 5.2, 4.0, 4.6, 3.5, 4.9, 4.2])
POST = np.array([4.5, 3.9, 5.6, 4.3, 4.6, 5.1, 5.3, 4.8, 4.6, 4.1, 5.5, 4.9])


def test_paired_change_matches_pingouin_and_scipy():
    summary = paired_change(PRE, POST)
    changes = POST - PRE
    wilcoxon = pg.wilcoxon(POST, PRE)
    t_test = pg.ttest(POST, PRE, paired=True)
    assert summary.n == 12
    assert summary.mean_change == pytest.approx(changes.mean())
    assert summary.median_change == pytest.approx(np.median(changes))
    assert summary.wilcoxon_p == pytest.approx(float(wilcoxon["p_val"].iloc[0]))
    assert summary.rank_biserial == pytest.approx(float(wilcoxon["RBC"].iloc[0]))
    assert summary.t_test_p == pytest.approx(float(t_test["p_val"].iloc[0]))
    # Cohen's dz = t / √n for paired data.
    assert summary.cohen_dz == pytest.approx(float(t_test["T"].iloc[0]) / math.sqrt(12))


def test_bootstrap_interval_agrees_with_scipy_percentile_bootstrap():
    summary = paired_change(PRE, POST, seed=3)
    reference = stats.bootstrap(
        (POST - PRE,), np.mean, n_resamples=20000, method="percentile", random_state=np.random.default_rng(1)
    ).confidence_interval
    low, high = summary.mean_change_ci
    width = reference.high - reference.low
    assert abs(low - reference.low) < 0.1 * width and abs(high - reference.high) < 0.1 * width
    assert summary.median_change_ci[0] <= summary.median_change <= summary.median_change_ci[1]


def test_statistics_of_too_few_or_unchanged_pairs_are_undefined_not_invented():
    assert paired_change([], []).mean_change is None
    single = paired_change([1.0], [2.0])
    assert (
        single.n == 1
        and single.wilcoxon_p is None
        and single.mean_change_ci is None
        and single.cohen_dz is None
    )
    same = paired_change([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same.wilcoxon_p is None and same.rank_biserial is None and same.cohen_dz is None


def test_rank_biserial_extremes():
    assert rank_biserial(np.array([0.1, 0.2, 0.3])) == 1.0
    assert rank_biserial(np.array([-0.1, -0.2])) == -1.0


def test_holm_and_benjamini_hochberg_reference_values():
    # Holm: sorted p 0.01, 0.03, 0.04 × 3, 2, 1 with monotonicity → 0.03, 0.06, 0.06.
    assert adjust([0.01, 0.04, 0.03], "holm") == pytest.approx([0.03, 0.06, 0.06])
    # Benjamini–Hochberg: 0.01·3/1, 0.03·3/2, 0.04·3/3 with step-up minimum → 0.03, 0.04, 0.04.
    assert adjust([0.01, 0.04, 0.03], "fdr_bh") == pytest.approx([0.03, 0.04, 0.04])
    assert adjust([None, 0.02], "holm") == [None, pytest.approx(0.02)]
    rng = np.random.default_rng(5)
    for method in ("holm", "fdr_bh"):
        p_values = rng.uniform(0, 0.2, size=17)
        assert adjust(list(p_values), method) == pytest.approx(
            list(multipletests(p_values, method=method)[1])
        )
    with pytest.raises(ValueError, match="Unknown adjustment"):
        adjust([0.1], "bonferroni-ish")


def test_between_arms_matches_pingouin_mann_whitney():
    filler, control = POST[:7] - PRE[:7], POST[7:] - PRE[7:] - 0.3
    [result] = between_arms({"filler": filler, "control": control})
    reference = pg.mwu(control, filler)  # arms in name order: control first
    assert (result.first, result.second) == ("control", "filler")
    assert result.p == pytest.approx(float(reference["p_val"].iloc[0]))
    assert result.rank_biserial == pytest.approx(float(reference["RBC"].iloc[0]))
    assert result.adjusted_p == pytest.approx(result.p)  # one pair: nothing to adjust


# Comparability ----------------------------------------------------------------------------------------


def test_the_same_face_reframed_is_comparable():
    shape = mean_shape()
    moved = similarity(shape, 0.97, 2.0, (12.0, -8.0))
    colour = {"luminance": 150.0, "r_chroma": 40.0, "b_chroma": 27.0}
    assessment = assess_pair(
        PhotoFigures(shape, FRONTAL_POSE, colour), PhotoFigures(moved, FRONTAL_POSE, colour)
    )
    assert assessment["comparable"] and assessment["figures"]["residual_ipd"] < 1e-9
    assert assessment["figures"]["scale_change"] == pytest.approx(3.0)


def test_the_scale_change_is_measured_in_the_frame_not_in_pixels():
    """A 12-MP original and a 900-px export of the same framing: the face is 4.4 times larger in pixels
    but the same size in its frame; a closer camera at another resolution is still a scale change."""
    shape = mean_shape()
    large, small = (4000, 3000), (900, 675)
    exported = similarity(shape, small[0] / large[0], 0.0, (0.0, 0.0))
    same_framing = pair_figures(
        PhotoFigures(shape, FRONTAL_POSE, size=large), PhotoFigures(exported, FRONTAL_POSE, size=small)
    )
    assert same_framing["scale_change"] == pytest.approx(0.0, abs=1e-9)
    assert not any("Scale change" in warning for warning in warnings_for(same_framing))

    closer = similarity(shape, 1.2 * small[0] / large[0], 0.0, (0.0, 0.0))
    moved_closer = pair_figures(
        PhotoFigures(shape, FRONTAL_POSE, size=large), PhotoFigures(closer, FRONTAL_POSE, size=small)
    )
    assert moved_closer["scale_change"] == pytest.approx(20.0)
    assert any("Scale change" in warning for warning in warnings_for(moved_closer))

    # Without the photos' sizes the figure stays in pixels (one resolution assumed).
    unsized = pair_figures(PhotoFigures(shape, FRONTAL_POSE), PhotoFigures(exported, FRONTAL_POSE))
    assert unsized["scale_change"] == pytest.approx(100 * (1 - small[0] / large[0]))


def test_pairs_of_different_people_are_flagged(data_dir):
    faces = json.loads((data_dir / "landmarks68" / "landmarks.json").read_text())["faces"]
    shapes = [np.asarray(points, dtype=np.float64) for points in faces.values()]
    for index, first in enumerate(shapes):
        for second in shapes[index + 1 :]:
            figures = pair_figures(PhotoFigures(first, FRONTAL_POSE), PhotoFigures(second, FRONTAL_POSE))
            assert any("Registration residual" in warning for warning in warnings_for(figures)), figures


def test_pose_and_colour_beyond_their_limits_warn():
    limits = shipped_limits()
    figures = {
        "residual_ipd": 0.0,
        "yaw_difference": limits["yaw_difference"] + 1,
        "white_balance_difference": limits["white_balance_difference"] * 2,
    }
    warnings = warnings_for(figures)
    assert len(warnings) == 2 and warnings[0].startswith("Yaw difference")


# Noise floor ------------------------------------------------------------------------------------------


def test_repeatability_coefficient_of_known_within_sd():
    rng = np.random.default_rng(0)
    groups = [rng.normal(mean, 0.5, size=6) for mean in rng.normal(10, 3, size=400)]
    found = repeatability(groups)
    assert found["within_sd"] == pytest.approx(0.5, rel=0.05)
    assert found["repeatability_coefficient"] == pytest.approx(RC_FACTOR * found["within_sd"])
    assert found["between_photo_sd"] == pytest.approx(3, rel=0.15)


def test_rephotographing_moves_and_brightens_the_photo():
    image = np.full((120, 100, 3), 100, np.uint8)
    image[40:80, 30:70] = 200
    copy = rephotograph(
        image, Perturbation(dx=0.03, dy=0.0, angle=0.0, scale=1.0, brightness=1.1, jpeg_quality=90)
    )
    assert copy.shape == image.shape
    assert copy[10, 10].mean() == pytest.approx(110, abs=3)  # brightened 10 %
    # the square (columns 30–69) moved 3 px right: now columns 33–72
    assert copy[60, 31].mean() < 150 < copy[60, 33].mean() and copy[60, 72].mean() > 150 > copy[60, 74].mean()


def test_shipped_noise_floors_cover_the_landmark_measures():
    floors = noise_floors()
    for key in LANDMARK_MEASURES:
        assert 0 < floors[key] < 0.1, key


def test_shipped_wrinkle_floors_were_measured_on_wrinkled_faces_with_the_shipped_model():
    """The London faces have almost no wrinkles: a wrinkle floor from them would be the spread of zero.
    The wrinkle measures' floors come from the wrinkle photos, for the installed wrinkle model."""
    from ml.measures import catalogue
    from ml.wrinkles.models import WEIGHTS_FILE
    from ml.wrinkles.repeatability import weights_sha256

    document = json.loads(catalogue.NOISE_FLOOR_FILE.read_text())
    for key, row in document["measures"].items():
        wrinkle_measure = catalogue.definition(key).group in catalogue.WRINKLE_GROUPS
        assert row["photo_set"].startswith("wrinkle-boxes" if wrinkle_measure else "London"), key
    assert catalogue.noise_floor_weights_sha256("wrinkles") == weights_sha256(WEIGHTS_FILE)
    assert sum(key.startswith("wrinkle_area:") for key in noise_floors()) >= 20


def test_the_normality_scores_floor_is_the_worker_normalizers_framing_floor():
    """The pre-post "beyond noise" call of S uses the floor measured for the normalizer and residual map
    the worker scores with (its model card), not a floor of another model or map."""
    from ml.model_names import NORMALITY_AUTOENCODER
    from ml.normality.analysis import DEFAULT_RESIDUAL_MAP
    from ml.normality.residual_reference import STANDARDIZED_METRIC
    from ml.registry import registry

    reference = registry.describe(NORMALITY_AUTOENCODER)["details"]["reference"]
    heatmap = STANDARDIZED_METRIC if DEFAULT_RESIDUAL_MAP == "standardized" else "pse-ycbcr-eroded"
    assert reference["heatmap"] == heatmap
    assert noise_floors()["normality_score"] == pytest.approx(reference["noise_floor"])
    assert "normality_rating" not in noise_floors()  # no floor measured for the rating


def test_a_measure_no_test_photo_showed_has_no_floor(tmp_path, monkeypatch):
    """Zero spread from photos that never had the feature is not a measured floor of zero: any change
    would otherwise read as beyond noise."""
    from ml.measures import catalogue

    never = {"within_sd": 0.0, "repeatability_coefficient": 0.0, "mean": 0.0, "between_photo_sd": 0.0}
    steady = {"within_sd": 0.0, "repeatability_coefficient": 0.0, "mean": 0.4, "between_photo_sd": 0.2}
    floors_file = tmp_path / "noise_floor.json"
    floors_file.write_text(json.dumps({"measures": {"never_seen": never, "perfectly_steady": steady}}))
    monkeypatch.setattr(catalogue, "NOISE_FLOOR_FILE", floors_file)
    monkeypatch.setattr(catalogue, "NORMALITY_NOISE_FLOOR_FILE", tmp_path / "absent.json")
    catalogue.noise_floors.cache_clear()
    try:
        assert catalogue.noise_floors() == {"perfectly_steady": 0.0}
    finally:
        catalogue.noise_floors.cache_clear()
