"""Fitting and evaluation of the landmark-geometry wrinkle-type rules (:mod:`ml.wrinkles.type_geometry`)
on the cached segmentations of a ``wrinkle-boxes`` folder (:mod:`ml.wrinkles.segmentation_cache`): the
rules are chosen on ``train`` only, then scored on ``val`` (and once on ``test``) with Ultralytics'
matching and AP (:func:`ml.wrinkles.types.detection_metrics`), and get their model card."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ml.wrinkles.type_geometry import (
    ANCHORED,
    BOX_MODES,
    MARGINS,
    RULE_BOX_MODES,
    TYPE_CLASSES,
    ClassRule,
    FaceFrame,
    TypeEvidence,
    TypeRules,
    score,
)


def evidence_of_cached(cached: Any) -> TypeEvidence:
    """The evidence of a cached segmentation (:mod:`ml.wrinkles.segmentation_cache`), with the atlas zones
    drawn from its landmarks as the analysis draws them for the type regions."""
    from ml.zones.landmark_model import render_zone_masks

    zones = render_zone_masks(cached.landmarks, cached.shape)
    return TypeEvidence(cached.landmarks, cached.mask, cached.whole, zones)


@dataclass
class PhotoCandidates:
    """One photo's (``shape``: height, width) human boxes (``truth``: class index, ``[x0, y0, x1, y1]``)
    and, per class, margin and box mode, its candidate ``(coverage, box)`` list (empty when no face was
    found)."""

    name: str
    shape: tuple[int, int]
    truth: list[tuple[int, list[float]]]
    candidates: dict[tuple[str, float, str], list[tuple[float, list[float]]]]
    outside_face: int
    ipd: float = 0.0
    # Width and height in IPD of the human boxes inside the analysed face's square, by class index.
    sizes_in_face: list[tuple[int, float, float]] = field(default_factory=list)


def collect_candidates(
    data_dir: Path, cache_dir: Path, split: str, log: Callable[[str], None] = print
) -> list[PhotoCandidates]:
    """Every candidate of every rule setting on the cached photos of ``split`` (fitted once, scored
    many times)."""
    from ml.wrinkles.boxes import read_classes
    from ml.wrinkles.crop import face_crop
    from ml.wrinkles.segmentation_cache import read_cache

    if read_classes(data_dir) != dict(enumerate(TYPE_CLASSES)):
        raise ValueError(f"{data_dir}: classes.json is not the 9 types {TYPE_CLASSES} in that order.")
    photos = []
    for number, cached in enumerate(read_cache(data_dir, cache_dir, split), start=1):
        boxes = cached.photo.boxes(cached.shape[1], cached.shape[0])
        truth = [(box.label, [float(box.x0), float(box.y0), float(box.x1), float(box.y1)]) for box in boxes]
        if cached.landmarks is None:
            photos.append(PhotoCandidates(cached.photo.name, cached.shape, truth, {}, len(truth)))
            continue
        square = face_crop(cached.landmarks)
        inside = [
            square.x1 <= (box.x0 + box.x1) / 2 <= square.x2
            and square.y1 <= (box.y0 + box.y1) / 2 <= square.y2
            for box in boxes
        ]
        ipd = FaceFrame(cached.landmarks).ipd
        sizes = [
            (box.label, (box.x1 - box.x0) / ipd, (box.y1 - box.y0) / ipd)
            for box, in_face in zip(boxes, inside, strict=True)
            if in_face
        ]
        evidence = evidence_of_cached(cached)
        candidates = {
            (name, margin, mode): evidence.candidates(name, margin, mode)
            for name in TYPE_CLASSES
            for margin in MARGINS
            for mode in BOX_MODES
        }
        photos.append(
            PhotoCandidates(
                cached.photo.name, cached.shape, truth, candidates, len(boxes) - sum(inside), ipd, sizes
            )
        )
        if number % 50 == 0:
            log(f"{split}: {number} photos")
    return photos


def _predictions(photo: PhotoCandidates, rules: TypeRules) -> list[tuple[int, float, list[float]]]:
    return [
        (index, score(coverage, rule.reference_coverage), rule.final_box(box, photo.ipd, photo.shape))
        for index, name in enumerate(TYPE_CLASSES)
        if (rule := rules.rules.get(name)) is not None
        for coverage, box in photo.candidates.get((name, rule.margin, rule.base_box), [])
    ]


def score_photos(photos: Iterable[PhotoCandidates], rules: TypeRules) -> Any:
    """Ultralytics' detection metrics (:func:`ml.wrinkles.types.detection_metrics`) of the rules."""
    from ml.wrinkles.types import detection_metrics

    return detection_metrics(
        [(_predictions(photo, rules), photo.truth) for photo in photos], dict(enumerate(TYPE_CLASSES))
    )


def fit_rules(photos: list[PhotoCandidates], log: Callable[[str], None] = print) -> TypeRules:
    """Per class, the margin and box mode with the best AP50 on ``photos`` (the train split), its
    reference coverage (median of its candidates), its typical box size (median width and height of its
    human boxes inside the analysed faces, in IPD) and its display threshold (best F1 at IoU 0.5)."""
    from ml.wrinkles.types import best_f1_threshold

    chosen: dict[str, ClassRule] = {}
    table = []
    for index, name in enumerate(TYPE_CLASSES):
        best: tuple[float, ClassRule] | None = None
        sizes = np.array([size[1:] for photo in photos for size in photo.sizes_in_face if size[0] == index])
        box_size = (float(np.median(sizes[:, 0])), float(np.median(sizes[:, 1]))) if len(sizes) else None
        for margin in MARGINS:
            for mode in RULE_BOX_MODES:
                if box_size is None and mode.startswith(ANCHORED):
                    continue
                rule = ClassRule(margin, mode, box_size=box_size)
                coverages = [
                    c for photo in photos for c, _ in photo.candidates.get((name, margin, rule.base_box), [])
                ]
                reference = float(np.median(coverages)) if coverages else 0.01
                rule = ClassRule(margin, mode, reference, 0.5, box_size)
                metrics = score_photos(photos, TypeRules({name: rule}))
                ap50 = metrics["per_class"][index]["map50"] or 0.0
                table.append({"class": name, "margin": margin, "box": mode, "ap50": ap50})
                if best is None or ap50 > best[0]:
                    best = (ap50, rule)
        assert best is not None
        rule = best[1]
        threshold = best_f1_threshold(
            [(_predictions(photo, TypeRules({name: rule})), photo.truth) for photo in photos], index
        )
        chosen[name] = ClassRule(rule.margin, rule.box, rule.reference_coverage, threshold, rule.box_size)
        log(f"{name}: margin {rule.margin}, box {rule.box}, AP50 {best[0]:.3f}, threshold {threshold:.2f}")
    return TypeRules(chosen, {"split": "train", "photos": len(photos), "grid": table})


def evaluate_geometry_types(
    rules: TypeRules, data_dir: Path, cache_dir: Path, split: str, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """mAP50 and mAP50-95 per class of the rules on the cached photos of ``split`` (every candidate
    ranked, as Ultralytics' validation ranks every detection), with how many human boxes lie outside
    the analysed face (the other faces of 2×2 collages) and could never be found."""
    photos = collect_candidates(data_dir, cache_dir, split, log)
    report = score_photos(photos, rules)
    return {
        "split": split,
        **report,
        "image_size": "photo",
        "photos_without_face": sum(not photo.candidates for photo in photos),
        "boxes": sum(len(photo.truth) for photo in photos),
        "boxes_outside_face": sum(photo.outside_face for photo in photos),
    }


GEOMETRY_TITLE = "Wrinkle types by landmark geometry (rules on the wrinkle segmentation)"


def geometry_markdown_report(report: dict[str, Any], command: str) -> str:
    """The per-class mAP50 table of the geometry rules, with the boxes no rule could reach."""
    from ml.wrinkles.types import markdown_report

    return markdown_report(report, command, title=GEOMETRY_TITLE) + (
        f"\nHuman boxes: {report['boxes']}, of which {report['boxes_outside_face']} lie outside the analysed "
        "face's square (other faces of 2×2 collages: only the largest face is analysed, so they count as "
        f"missed); photos without a face found: {report['photos_without_face']}.\n"
    )


def write_geometry_card(
    rules_path: Path, val_report_path: Path, test_report_path: Path | None, version: str
) -> Path:
    """The registry card (JSON) and ``MODEL_CARD.md`` beside the rules, from their ``evaluate-types``
    JSON reports (val; test once)."""
    from ml.model_names import WRINKLE_TYPES_GEOMETRY, WRINKLES_UNET_WDS
    from ml.modelcard import ModelCard, card_path, write_card
    from ml.registry import file_sha256, registry
    from ml.wrinkles.types import map_metrics

    rules_path = Path(rules_path)
    rules = TypeRules.read(rules_path)
    val = json.loads(Path(val_report_path).read_text())
    test = json.loads(Path(test_report_path).read_text()) if test_report_path else None
    digest = file_sha256(rules_path)
    what = (
        "Geometry rules, not a learned detector: each of the 9 clinical wrinkle types is a facial region "
        "built from the 68 landmarks and the 33-zone atlas (docs/wrinkles.md, 'Wrinkle types'); a type is "
        "found where the shipped wrinkle segmentation (wrinkles-unet-wds, cut to the analysed skin) has "
        "lines inside its region. Margins, box modes and thresholds were chosen on the train split only."
    )
    segmenter = registry.describe(WRINKLES_UNET_WDS)
    recall = segmenter.get("metrics") or {}
    limits = (
        f"Weak: mAP50 {val['map50']:.3f} on val"
        + (f", {test['map50']:.3f} on test" if test else "")
        + f". Its boxes are only as good as the wrinkle segmentation ({segmenter['name']} "
        f"{segmenter['version']}: box recall {recall.get('val_box_recall', float('nan')):.2f} on val, "
        f"{recall.get('test_box_recall', float('nan')):.2f} on test); human boxes mark single lines, the "
        "rules box the lines the model finds, so IoU ≥ 0.5 is rare; a class whose rule matched no train box "
        "gets threshold 1 and is never shown; only the largest face of a photo is analysed "
        f"({val['boxes_outside_face']} of {val['boxes']} val boxes lie on other faces of collages); a type "
        "is named after where a line lies, not after its look (a scar or a hair in the forehead region is "
        "a 'forehead line'). Types are indicative only."
    )
    rows = [
        "| class | margin (IPD) | box | box size (IPD) | reference coverage | threshold | val boxes "
        "| val mAP50 | test mAP50 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    test_by_class = {row["class"]: row for row in (test or {}).get("per_class", [])}
    for row in val["per_class"]:
        rule = rules.rules[row["class"]]
        test_ap = (test_by_class.get(row["class"]) or {}).get("map50")
        rows.append(
            f"| {row['class']} | {rule.margin:g} | {rule.box} | {_size(rule.box_size)} | "
            f"{rule.reference_coverage:.4f} | "
            f"{rule.threshold:.2f} | {row['boxes']} | {_number(row['map50'])} | {_number(test_ap)} |"
        )
    (rules_path.parent / "MODEL_CARD.md").write_text(
        f"# Wrinkle-type rules card: landmark geometry on the wrinkle segmentation (version {version})\n\n"
        f"* Rules: `{rules_path.name}`, SHA-256 `{digest}`\n"
        f"* What it is: {what}\n"
        f"* Fitted by: `{rules.fitted_on.get('command', 'not recorded')}` ({rules.fitted_on.get('photos')} "
        "train photos)\n"
        f"* Evaluated by: `{val.get('command', 'not recorded')}`"
        + (f" and `{test.get('command')}` (test, once)" if test else "")
        + "\n\n"
        f"mAP50 (Ultralytics' matching and AP): val **{val['map50']:.3f}** ({val['photos']} photos)"
        + (f", test **{test['map50']:.3f}** ({test['photos']} photos)" if test else "")
        + ".\n\n"
        + "\n".join(rows)
        + f"\n\n**Limits.** {limits}\n\nLicence: Apache-2.0 (project code); rules fitted on wrinkle-boxes "
        "photos (research use only).\n"
    )
    return write_card(
        card_path(rules_path),
        ModelCard(
            name=WRINKLE_TYPES_GEOMETRY,
            task="wrinkle-type-detection",
            version=version,
            description=what,
            data=f"wrinkle-boxes: real face photos with human boxes; rules fitted on the train split "
            f"({rules.fitted_on.get('photos')} photos), measured on val ({val['photos']} photos)"
            + (f" and once on test ({test['photos']} photos)." if test else "."),
            command=str(rules.fitted_on.get("command", "python -m ml wrinkles fit-geometry-types ...")),
            licence="Apache-2.0 (project code); wrinkle-boxes photos research use only.",
            limitations=limits,
            metrics={**map_metrics(val), **({"test_map50": test["map50"]} if test else {})},
            weights=rules_path.name,
            weights_sha256=digest,
            details={
                "markdown": "MODEL_CARD.md",
                "method": "landmark geometry rules",
                "segmentation": f"{segmenter['name']} {segmenter['version']}",
                "segmentation_weights_sha256": segmenter.get("weights_sha256"),
            },
        ),
    )


def _size(size: tuple[float, float] | None) -> str:
    return "–" if size is None else f"{size[0]:.2f} × {size[1]:.2f}"


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
