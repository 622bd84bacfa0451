"""Semi-synthetic rendering, training, evaluation, analysis and CLI on tiny synthetic data."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from ml.modelcard import card_path, read_card
from ml.wrinkles.synthesize import render_creases, synthesize_dataset


def _face_landmarks(centre_x: float = 160.0, eye_y: float = 170.0, scale: float = 1.0) -> np.ndarray:
    """A plausible frontal iBUG-68 layout (eye distance ≈ 70 px · scale)."""
    points = np.zeros((68, 2))
    angles = np.linspace(np.pi, 0, 17)
    points[0:17] = np.c_[
        centre_x + 85 * scale * np.cos(angles), eye_y + 10 * scale + 110 * scale * np.sin(angles)
    ]
    points[17:22] = np.c_[np.linspace(centre_x - 65, centre_x - 15, 5) * 1.0, np.full(5, eye_y - 22 * scale)]
    points[22:27] = np.c_[np.linspace(centre_x + 15, centre_x + 65, 5), np.full(5, eye_y - 22 * scale)]
    points[27:31] = np.c_[np.full(4, centre_x), np.linspace(eye_y, eye_y + 40 * scale, 4)]
    points[31:36] = np.c_[np.linspace(centre_x - 15, centre_x + 15, 5), np.full(5, eye_y + 50 * scale)]
    for offset, start in ((-35, 36), (35, 42)):
        ring = np.linspace(0, 2 * np.pi, 7)[:-1]
        points[start : start + 6] = np.c_[
            centre_x + offset * scale + 12 * np.cos(ring), eye_y + 5 * np.sin(ring)
        ]
    ring = np.linspace(0, 2 * np.pi, 21)[:-1]
    points[48:68] = np.c_[centre_x + 25 * scale * np.cos(ring), eye_y + 85 * scale + 8 * np.sin(ring)]
    return points


def _skin(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array([205, 160, 135], dtype=float)
    return np.clip(base + rng.normal(0, 4, size=(360, 320, 3)), 0, 255).astype(np.uint8)


def _forehead_lines_frame() -> np.ndarray:
    frame = np.zeros((1024, 1024), dtype=np.float32)
    for row in (300, 340, 380):
        cv2.line(frame, (380, row), (650, row + 10), 1.0, 4)
    return frame


def test_render_darkens_skin_where_the_ground_truth_is() -> None:
    image = _skin(0)
    rendered = render_creases(image, _face_landmarks(), _forehead_lines_frame(), np.random.default_rng(1))
    truth = rendered.fold_darkening >= 0.06
    assert truth.any(), "no crease was rendered on the forehead"
    ratio = rendered.image.astype(float).mean(axis=2) / image.astype(float).mean(axis=2)
    assert ratio[truth].mean() < 0.93
    eye_rows = slice(160, 180)
    assert not truth[eye_rows, 110:140].any()  # creases stay off the eyes
    assert np.abs(rendered.image.astype(int) - image)[rendered.fold_darkening == 0].max() <= 30


@pytest.fixture(scope="module")
def synthetic_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wrinkles")
    masks = root / "wrinkle-masks" / "masks"
    masks.mkdir(parents=True)
    frame = _forehead_lines_frame()
    with (root / "wrinkle-masks" / "crop_limits.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ffhq_id", "min_h", "max_h", "min_w", "max_w"])
        for identifier in (1, 2):
            crop = (np.roll(frame, 20 * identifier, axis=0)[200:900, 200:800] > 0).astype(np.uint8) * 255
            cv2.imwrite(str(masks / f"final{identifier:05d}.png"), crop)
            writer.writerow([identifier, 200, 900, 200, 800])
    faces = root / "faces"
    faces.mkdir()
    for index in range(5):
        cv2.imwrite(str(faces / f"face{index}.png"), _skin(index))
    cv2.imwrite(str(faces / "noface.png"), np.full((100, 100, 3), 128, dtype=np.uint8))

    def detect(image: np.ndarray) -> list:
        return [] if image.std() < 1 else [SimpleNamespace(landmarks=_face_landmarks())]

    out = root / "set"
    logged: list[str] = []
    samples = synthesize_dataset(
        root / "wrinkle-masks", faces, out, per_face=2, size=64, detect=detect, log=logged.append
    )
    assert len(samples) == 10
    assert any("no face found" in line for line in logged)
    return out


def test_synthesized_files_and_index(synthetic_set: Path) -> None:
    with (synthetic_set / "index.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10 and all(row["label"] == "semi-synthetic" for row in rows)
    assert "crop_box" in json.loads(rows[0]["placement"])
    mask = cv2.imread(str(synthetic_set / rows[0]["mask"]), cv2.IMREAD_GRAYSCALE)
    assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 255} and (mask > 0).any()


def test_train_evaluate_and_analyse(synthetic_set: Path, tmp_path: Path) -> None:
    from ml.wrinkles.analysis import analyze_wrinkles
    from ml.wrinkles.evaluate import evaluate_methods, markdown_table, write_report
    from ml.wrinkles.modelcard import write_model_card
    from ml.wrinkles.train import load_checkpoint, train_model

    checkpoint = tmp_path / "wds.pt"
    result = train_model(
        synthetic_set, checkpoint, base_width=2, size=32, epochs=1, folds=2, log=lambda _: None
    )
    assert checkpoint.is_file() and checkpoint.stat().st_size < 25 * 2**20
    model, metadata = load_checkpoint(checkpoint)
    assert metadata["data_label"] == "semi-synthetic" and result.best_epoch == 0
    assert not set(metadata["test_names"]) & set(metadata["train_names"] + metadata["validation_names"])
    report = evaluate_methods(synthetic_set, [checkpoint], ["unet-wds", "frangi"], log=lambda _: None)
    assert [row["method"] for row in report["results"]] == ["unet-wds", "frangi"]
    assert all(0.0 <= row["jsi"] <= 1.0 for row in report["results"])
    assert "semi-synthetic" in markdown_table(report, "python -m ml wrinkles evaluate ...")
    write_report(report, tmp_path / "report.md", "python -m ml wrinkles evaluate ...")
    metrics = write_model_card(checkpoint, tmp_path / "report.json", tmp_path / "card.md")
    assert metrics["jsi"] == report["results"][0]["jsi"] and metrics["label"] == "semi-synthetic"
    card = (tmp_path / "card.md").read_text()
    assert "semi-synthetic" in card and f"{metrics['jsi']:.4f}" in card
    registry_card = read_card(card_path(checkpoint))
    assert registry_card.metrics == metrics and registry_card.weights == checkpoint.name
    with pytest.raises(ValueError, match="No checkpoint"):
        evaluate_methods(synthetic_set, [checkpoint], ["unet"], log=lambda _: None)
    # The validation names (the epoch choice) can be scored too, for comparisons that choose nothing on test.
    validation = evaluate_methods(synthetic_set, [checkpoint], ["unet-wds"], log=lambda _: None, split="val")
    assert report["evaluated_split"] == "test" and validation["evaluated_split"] == "val"
    assert validation["images"] == len(metadata["validation_names"]) and "test_names" not in validation
    assert validation["results"][0]["jsi"] == pytest.approx(
        metadata["training"]["validation"]["jsi"], abs=0.01
    )  # the training's own measurement, up to the fp16 rounding of the saved weights
    assert "Validation images" in markdown_table(validation, "python -m ml wrinkles evaluate --split val ...")
    analysis = analyze_wrinkles(_skin(0), landmarks=_face_landmarks(), loaded=(model, metadata))
    assert analysis.mask.shape == (360, 320)
    assert set(analysis.data["regions"]) == {"forehead", "below_brows"}
    assert 0.0 <= analysis.data["regions"]["forehead"]["area_fraction"] <= 1.0
    assert len(analysis.data["zones"]) == 33


def test_analysis_refuses_without_trained_weights(mark_untrained) -> None:
    from ml.wrinkles.analysis import WrinkleModelUnavailableError, analyze_wrinkles

    mark_untrained("wrinkles-unet-wds")
    with pytest.raises(WrinkleModelUnavailableError, match="no trained weights"):
        analyze_wrinkles(_skin(0), landmarks=_face_landmarks())


def test_cli_label_writes_ground_truth(tmp_path: Path) -> None:
    from ml.cli import main

    image = _skin(0)
    image[100:102, 40:280] = 120
    rough = np.zeros(image.shape[:2], dtype=np.uint8)
    rough[90:112, 30:290] = 255
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "rough.png"), rough)
    out = tmp_path / "gt.png"
    assert (
        main(
            ["wrinkles", "label", str(tmp_path / "photo.png"), str(tmp_path / "rough.png"), "--out", str(out)]
        )
        == 0
    )
    truth = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE) > 0
    assert truth[100:102, 50:270].mean() > 0.9 and not truth[rough == 0].any()


def test_human_wrinkle_shapes_render_on_a_real_face(data_dir: Path) -> None:
    from ml.core.imageio import load_image
    from ml.wrinkles.synthesize import read_wrinkle_shapes

    shapes = read_wrinkle_shapes(data_dir / "wrinkle-masks")
    assert len(shapes) == 578
    landmarks_file = json.loads((data_dir / "landmarks68" / "landmarks.json").read_text())
    landmarks = np.asarray(landmarks_file["faces"]["images/takeo.jpg"], dtype=float)
    image = load_image(data_dir / "landmarks68" / "images" / "takeo.jpg")
    rendered = render_creases(image, landmarks, shapes[3].frame_mask(), np.random.default_rng(0))
    truth = rendered.fold_darkening >= 0.06
    assert 0 < truth.mean() < 0.05
    brow_top = landmarks[17:27, 1].min()
    nose_tip = landmarks[30, 1]
    rows = np.nonzero(truth)[0]
    assert rows.max() <= nose_tip + 1 and rows.min() >= brow_top - 1.0 * np.ptp(landmarks[[36, 45], 0])


def test_cross_validation_pools_every_image_once(synthetic_set: Path, tmp_path: Path) -> None:
    import shutil

    from ml.wrinkles.crossval import cross_validate, markdown_table
    from ml.wrinkles.evaluate import evaluate_methods, write_report
    from ml.wrinkles.modelcard import write_model_card
    from ml.wrinkles.train import train_model

    runs = tmp_path / "runs"
    for fold in (0, 1):
        for variant in ("unet", "unet-wds"):
            train_model(
                synthetic_set,
                runs / f"fold{fold}" / f"{variant}.pt",
                variant=variant,
                base_width=2,
                size=32,
                epochs=1,
                folds=2,
                fold=fold,
                log=lambda _: None,
            )
    report = cross_validate(synthetic_set, runs, ["unet", "unet-wds", "frangi"], log=lambda _: None)
    assert report["complete"] and report["folds_evaluated"] == [0, 1]
    assert report["test_images"] == 10  # every synthesized image is in exactly one test fold
    for row in report["results"]:
        per_fold = [
            next(item for item in fold["results"] if item["method"] == row["method"])
            for fold in report["fold_reports"]
        ]
        fields = per_fold[0]["confusion"]
        pooled = {field: sum(item["confusion"][field] for item in per_fold) for field in fields}
        union = pooled["true_positive"] + pooled["false_positive"] + pooled["false_negative"]
        assert row["jsi"] == pytest.approx(pooled["true_positive"] / union if union else 1.0)
        assert row["fold_jsi"] == [item["jsi"] for item in per_fold] and row["images"] == 10
    table = markdown_table(report, "python -m ml wrinkles crossval ...")
    assert "semi-synthetic" in table and "2-fold" in table and "fold 1" in table
    write_report(report, tmp_path / "crossval.md", "crossval ...", render=markdown_table)
    checkpoint = runs / "fold0" / "unet-wds.pt"
    fold0 = evaluate_methods(synthetic_set, [checkpoint], ["unet-wds"], log=lambda _: None)
    write_report(fold0, tmp_path / "fold0.md", "evaluate ...")
    card = tmp_path / "card.md"
    metrics = write_model_card(checkpoint, tmp_path / "fold0.json", card, tmp_path / "crossval.json")
    wds = next(row for row in report["results"] if row["method"] == "unet-wds")
    assert metrics["crossval_jsi"]["unet-wds"] == wds["jsi"]
    assert "2-fold cross-validation" in card.read_text()

    with pytest.raises(ValueError, match="shipped model"):
        cross_validate(synthetic_set, runs, ["unet", "model"], log=lambda _: None)
    shutil.copytree(runs / "fold0", runs / "fold0-again")
    with pytest.raises(ValueError, match="evaluated twice"):
        cross_validate(synthetic_set, runs, ["unet"], log=lambda _: None)


def test_ship_real_installs_the_threshold_and_a_card_with_both_models(
    synthetic_set: Path, tmp_path: Path
) -> None:
    from ml.cli import main
    from ml.wrinkles.analysis import post_processing_of
    from ml.wrinkles.postprocess import PostProcessing
    from ml.wrinkles.train import load_checkpoint, train_model

    checkpoint = tmp_path / "real.pt"
    train_model(synthetic_set, checkpoint, base_width=2, size=32, epochs=1, folds=2, log=lambda _: None)

    def report(name: str, split: str, recall: float, precision: float) -> dict:
        return {
            "split": split,
            "photos": 10,
            "share_analysed": 1.0,
            "box_recall": recall,
            "pixel_precision": precision,
            "threshold": 0.5,
            "model": {"name": name, "version": "v", "input_region": "face", "size": 32, "threshold": 0.5},
            "sweep": [
                {"threshold": 0.5, "box_recall": recall, "pixel_precision": precision},
                {"threshold": 0.9, "box_recall": recall / 2, "pixel_precision": 0.75},
            ],
        }

    new, previous = tmp_path / "new.json", tmp_path / "previous.json"
    new.write_text(json.dumps({"reports": [report("new", "val", 0.4, 0.3), report("new", "test", 0.5, 0.2)]}))
    previous.write_text(json.dumps({"reports": [report("old", "test", 0.25, 0.55)]}))
    out = tmp_path / "weights"
    out.mkdir()
    # A sweep-post-processing result: its chosen row (threshold and scores included) holds the settings.
    chosen = tmp_path / "sweep.json"
    chosen.write_text(
        json.dumps({"chosen": {"threshold": 0.9, "eye_margin": 0.2, "min_peak": 0.8, "box_recall": 0.3}})
    )
    arguments = ["--report-new", str(new), "--report-previous", str(previous), "--out-dir", str(out)]
    assert main(
        [
            "wrinkles",
            "ship-real",
            "--checkpoint",
            str(checkpoint),
            "--threshold",
            "0.9",
            "--post-processing",
            str(chosen),
            *arguments,
            "--version",
            "0.3.0",
        ]
    ) in (0, None)
    _, metadata = load_checkpoint(out / "unet_wds.pt")
    assert metadata["threshold"] == 0.9
    assert post_processing_of(metadata) == PostProcessing(eye_margin=0.2, min_peak=0.8)
    assert "eye_margin 0.2" in (out / "MODEL_CARD.md").read_text()
    card = read_card(card_path(out / "unet_wds.pt"))
    assert card.version == "0.3.0" and card.metrics["test_box_recall"] == 0.25
    assert card.metrics["test_pixel_precision"] == 0.75 and card.metrics["threshold"] == 0.9
    markdown = (out / "MODEL_CARD.md").read_text()
    assert "| old v (face, 32 px, threshold 0.5) | test | 10 | 100.0% | 0.250 | 0.550 |" in markdown
    assert "| test | 10 | 100.0% | 0.250 | 0.750 |" in markdown
    refused = ["--checkpoint", str(checkpoint), "--threshold", "0.7", *arguments, "--version", "x"]
    shipped = (out / "unet_wds.pt").read_bytes()
    assert main(["wrinkles", "ship-real", *refused]) not in (0, None)  # no sweep row at 0.7: refused
    assert (out / "unet_wds.pt").read_bytes() == shipped  # and nothing was overwritten


def test_card_real_adds_the_every_face_table_and_keeps_the_weights(
    synthetic_set: Path, tmp_path: Path
) -> None:
    from ml.cli import main
    from ml.wrinkles.train import train_model

    weights = tmp_path / "weights" / "unet_wds.pt"
    weights.parent.mkdir()
    train_model(synthetic_set, weights, base_width=2, size=32, epochs=1, folds=2, log=lambda _: None)

    def report(split: str, subject_recall: float, every_recall: float) -> dict:
        every = {"faces_analysed": 30, "boxes_on_no_analysed_face": 4, "boxes": 100}
        return {
            "split": split,
            "photos": 10,
            "share_analysed": 1.0,
            "box_recall": subject_recall,
            "pixel_precision": 0.6,
            "model": {"name": "m", "version": "v", "input_region": "face", "size": 32, "threshold": 0.5},
            "layout": {"collage_photos": 9},
            "all_faces": {
                **every,
                "box_recall": every_recall,
                "box_recall_on_analysed_faces": 0.7,
                "pixel_precision": 0.65,
            },
        }

    new, previous = tmp_path / "new.json", tmp_path / "previous.json"
    new.write_text(json.dumps({"reports": [report("val", 0.2, 0.62)], "command": "evaluate all"}))
    previous.write_text(json.dumps({"reports": [report("val", 0.25, 0.66)]}))
    before = weights.read_bytes()
    arguments = ["--weights", str(weights), "--report-new", str(new), "--report-previous", str(previous)]
    arguments += ["--version", "0.4.0", "--previous-name", "old"]
    assert main(["wrinkles", "card-real", *arguments]) in (0, None)
    assert weights.read_bytes() == before
    markdown = (weights.parent / "MODEL_CARD.md").read_text()
    assert "| this model (0.4.0) | val | 9 of 10 | 30 | 4 of 100 | 0.620 | 0.700 | 0.650 |" in markdown
    assert "| old | val | 9 of 10 | 30 | 4 of 100 | 0.660 | 0.700 | 0.650 |" in markdown
    card = read_card(card_path(weights))
    assert card.metrics["val_box_recall"] == 0.2 and card.metrics["val_all_faces_box_recall"] == 0.62
    assert "Ablation on real photos" not in markdown

    def seeds(mean: float) -> dict:
        return {"n": 3, "mean": mean, "sd": 0.01, "values": [mean - 0.01, mean, mean + 0.01]}

    ablation = tmp_path / "reports" / "ablation.json"
    ablation.parent.mkdir()
    ablation.write_text(
        json.dumps(
            {
                "command": "python scripts/wrinkles_ablation_real.py ...",
                "bootstrap": {"confidence": 0.95},
                "seed_summary": [
                    {
                        "model": "unet-wds",
                        "split": "val",
                        "seeds": [0, 1, 2],
                        "jsi": seeds(0.15),
                        "post_box_recall": seeds(0.22),
                        "post_pixel_precision": seeds(0.56),
                    }
                ],
                "comparisons": [
                    {
                        "a": "unet-wds",
                        "b": "unet",
                        "setting": "post",
                        "split": "val",
                        "box_recall_difference": 0.012,
                        "box_recall_interval": [-0.004, 0.03],
                        "per_seed": [{"seed": 0, "box_recall_difference": 0.02}],
                    }
                ],
            }
        )
    )
    assert main(["wrinkles", "card-real", *arguments, "--ablation", str(ablation)]) in (0, None)
    markdown = (weights.parent / "MODEL_CARD.md").read_text()
    assert "## Ablation on real photos" in markdown and "[report](../reports/ablation.md)" in markdown
    assert "| U-Net + WDS | val | 0.220 ± 0.010 | 0.560 ± 0.010 | 0.150 ± 0.010 |" in markdown
    assert "interval over photos: val +0.012 [-0.004, +0.030] (seed by seed +0.020)." in markdown
    assert weights.read_bytes() == before
