"""Real-photo wrinkle work on ``wrinkle-boxes`` folders: the photo segmenter that the box evaluation
runs, and the training set of semi-automatic labels built from the human boxes.

**Labels from boxes** (Kim et al. 2023, semi-automatic labelling, with the human box as the annotator's
rough mask M): the texture map of the whole photo, T' = T·M with M the union of the photo's boxes,
then the adaptive threshold (``bradley-roth`` or ``opencv-gaussian``) of
:func:`ml.wrinkles.labeling.label_wrinkles`. The photo and its label are then cut to the whole-face
square (:func:`ml.wrinkles.crop.face_crop`, from the photo's landmarks) at the training resolution, the
same square the whole-face model segments at inference. A label pixel of the resized square is wrinkle
when at least a quarter of the photo pixels it covers are (plain area averaging with a 0.5 cut would
erase one-pixel lines at a 0.8 scale).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ml.wrinkles.boxes import FacePrediction, boxes_mask, read_photos
from ml.wrinkles.crop import ForeheadEyeCrop
from ml.wrinkles.labeling import THRESHOLD_METHODS, label_wrinkles

LABEL_COVERAGE = 0.25
DEFAULT_TRAINING_SIZE = 512
NO_FACE = "No face was found in the photo, so there are no wrinkles to measure."


def subject_landmarks_of(image: np.ndarray) -> np.ndarray:
    """The subject's 68 landmarks; :class:`ml.core.subject.NoFaceError` (a ``ValueError``) without a face."""
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import subject_landmarks

    return subject_landmarks(detect_faces_with_landmarks(image), NO_FACE)


def cached_subject_landmarks(cache_dir: Path) -> Callable[[np.ndarray], np.ndarray]:
    """:func:`subject_landmarks_of` remembered under ``cache_dir``, so that evaluating several checkpoints on
    the same photos finds each face once (the landmarks take about two thirds of an evaluation's time).
    A photo's entry is keyed by its pixels and by the landmark and face detectors (names, versions and
    weights' SHA-256), so another detector never reads stale landmarks; photos without a face are
    remembered too."""
    from ml.core.detection import DEFAULT_FACE_DETECTOR
    from ml.core.landmarks import DEFAULT_LANDMARK_MODEL
    from ml.core.subject import NoFaceError
    from ml.registry import registry

    detectors = json.dumps(
        [
            {key: registry.describe(name).get(key) for key in ("name", "version", "weights_sha256")}
            for name in (DEFAULT_LANDMARK_MODEL, DEFAULT_FACE_DETECTOR)
        ],
        sort_keys=True,
    ).encode()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)

    def landmarks_of(image: np.ndarray) -> np.ndarray:
        digest = hashlib.sha256(detectors + str(image.shape).encode() + image.tobytes()).hexdigest()
        found, missing = cache_dir / f"{digest}.npy", cache_dir / f"{digest}.no-face.txt"
        if found.is_file():
            return np.load(found)
        if missing.is_file():
            raise NoFaceError(missing.read_text())
        try:
            landmarks = subject_landmarks_of(image)
        except NoFaceError as error:
            missing.write_text(str(error))
            raise
        np.save(found, landmarks)
        return landmarks

    return landmarks_of


def photo_segmenter(
    checkpoint: Path | None = None,
    threshold: float | None = None,
    probabilities: bool = False,
    post_processing: dict[str, Any] | None = None,
    all_faces: bool = False,
    landmarks_cache: Path | None = None,
) -> tuple[Callable[[np.ndarray], Any], dict[str, Any]]:
    """A function photo → bool wrinkle mask of the photo's size exactly as the analysis reports it
    (:func:`ml.wrinkles.analysis.analysed_wrinkles`: landmarks, the model's square, the analysed skin and
    the model's post-processing), and the model's description. ``checkpoint``: a training checkpoint
    instead of the shipped model; ``threshold``: another probability threshold than the model's;
    ``post_processing``: other post-processing settings than the model's;
    ``probabilities``: return instead a function threshold → that mask, for a threshold sweep that runs
    the network once per photo; ``all_faces``: return instead the photo's detected faces, each analysed
    the same way with its own landmarks (:class:`ml.wrinkles.boxes.FacePrediction`, for
    ``evaluate_boxes(all_faces=True)``; the product itself analyses the subject's face only);
    ``landmarks_cache``: a folder that remembers the subject's landmarks of each photo
    (:func:`cached_subject_landmarks`; the subject's face only)."""
    from ml.wrinkles.analysis import (
        analysed_wrinkles,
        post_processing_of,
        resolve_wrinkle_model,
        segment_wrinkles,
    )
    from ml.wrinkles.models import DEFAULT_WRINKLE_MODEL
    from ml.wrinkles.train import load_checkpoint

    loaded = load_checkpoint(checkpoint) if checkpoint is not None else None
    network, metadata, description = resolve_wrinkle_model(DEFAULT_WRINKLE_MODEL, None, loaded)
    if threshold is not None:
        metadata = {**metadata, "threshold": threshold}
    if post_processing is not None:
        metadata = {**metadata, "post_processing": post_processing}
    description = {
        "name": description.get("name"),
        "version": description.get("version", "checkpoint"),
        "input_region": metadata.get("input_region", "forehead-eye"),
        "size": int(metadata["size"]),
        "threshold": float(metadata.get("threshold", 0.5)),
        "post_processing": post_processing_of(metadata).as_dict(),
        **({"checkpoint": str(checkpoint)} if checkpoint is not None else {}),
    }

    def analyse_face(image: np.ndarray, landmarks: np.ndarray) -> tuple[Any, ForeheadEyeCrop]:
        segmentation = segment_wrinkles(image, landmarks, network, metadata)
        if not probabilities:
            analysed = analysed_wrinkles(segmentation, landmarks, image.shape, metadata)
            return analysed.photo_mask, segmentation.crop

        def mask_at(rule: float) -> np.ndarray:
            at_rule = segmentation.at_threshold(rule)
            return analysed_wrinkles(at_rule, landmarks, image.shape, metadata).photo_mask

        return mask_at, segmentation.crop

    landmarks_of = (
        subject_landmarks_of if landmarks_cache is None else cached_subject_landmarks(landmarks_cache)
    )

    def segment(image: np.ndarray) -> Any:
        return analyse_face(image, landmarks_of(image))[0]

    def segment_every_face(image: np.ndarray) -> list[FacePrediction]:
        from ml.core.landmarks import detect_faces_with_landmarks
        from ml.core.subject import NoFaceError, subject_index

        faces = detect_faces_with_landmarks(image)
        subject = subject_index(faces)
        if subject is None:
            raise NoFaceError(NO_FACE)
        predictions = []
        for index, face in enumerate(faces):
            landmarks = np.asarray(face.landmarks, dtype=np.float64)
            centre = (float(landmarks[:, 0].mean()), float(landmarks[:, 1].mean()))
            box = tuple(float(value) for value in face.box)
            try:
                prediction, crop = analyse_face(image, landmarks)
            except ValueError as error:
                if index == subject:  # the subject's face decides whether the photo is analysed
                    raise
                predictions.append(FacePrediction(None, box, box, centre, False, str(error)))
                continue
            square = (float(crop.x1), float(crop.y1), float(crop.x2), float(crop.y2))
            predictions.append(FacePrediction(prediction, square, box, centre, index == subject))
        return predictions

    return (segment_every_face if all_faces else segment), description


def resize_label(label: np.ndarray, size: int) -> np.ndarray:
    """A bool label resized to ``size × size``: wrinkle where ≥ ``LABEL_COVERAGE`` of the area is."""
    return cv2.resize(label.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) >= LABEL_COVERAGE


def build_box_label_set(
    data_dir: Path,
    out_dir: Path,
    method: str = "bradley-roth",
    size: int = DEFAULT_TRAINING_SIZE,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Write ``out_dir/{images,masks,rough}/NAME.png`` (whole-face squares at ``size``) and
    ``index.csv`` (``name, image, mask, rough, face, split``) for every photo of a wrinkle-boxes folder;
    a valid ``python -m ml wrinkles train --data`` folder whose ``split`` column fixes the split.
    Photos without a face are left out and listed in ``summary.json``."""
    from ml.core.imageio import load_image
    from ml.wrinkles.crop import face_crop

    if method not in THRESHOLD_METHODS:
        raise ValueError(
            f"Unknown threshold method '{method}'; choose one of {', '.join(THRESHOLD_METHODS)}."
        )
    out_dir = Path(out_dir)
    for folder in ("images", "masks", "rough"):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    photos = read_photos(data_dir)[:limit] if limit else read_photos(data_dir)
    rows, skipped = [], []
    label_fraction = []
    for number, photo in enumerate(photos, start=1):
        image = load_image(photo.image_path)
        try:
            landmarks = subject_landmarks_of(image)
            crop = face_crop(landmarks, size=size)
        except ValueError as error:
            skipped.append({"photo": photo.name, "reason": str(error)})
            continue
        rough = boxes_mask(photo.boxes(image.shape[1], image.shape[0]), image.shape[:2])
        label = label_wrinkles(image, rough, method=method)
        if rough.any():
            label_fraction.append(float(label.sum() / rough.sum()))
        # The label is cut from the photo at full resolution, then area-resized (see module doc).
        full = face_crop(landmarks, size=max(size, int(round(crop.x2 - crop.x1))))
        square_label = resize_label(full.crop_image(label.astype(np.uint8), cv2.INTER_NEAREST) > 0, size)
        square_rough = crop.crop_image(rough.astype(np.uint8) * 255, cv2.INTER_NEAREST)
        cv2.imwrite(
            str(out_dir / "images" / f"{photo.name}.png"),
            cv2.cvtColor(crop.crop_image(image), cv2.COLOR_RGB2BGR),
        )
        cv2.imwrite(str(out_dir / "masks" / f"{photo.name}.png"), square_label.astype(np.uint8) * 255)
        cv2.imwrite(str(out_dir / "rough" / f"{photo.name}.png"), square_rough)
        rows.append(
            {
                "name": photo.name,
                "image": f"images/{photo.name}.png",
                "mask": f"masks/{photo.name}.png",
                "rough": f"rough/{photo.name}.png",
                "face": photo.name,
                "split": photo.split,
            }
        )
        if number % 50 == 0:
            log(f"{number}/{len(photos)} photos labelled")
    with (out_dir / "index.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["name", "image", "mask", "rough", "face", "split"])
        writer.writeheader()
        writer.writerows(rows)
    summary = {
        "data": str(data_dir),
        "method": method,
        "size": size,
        "input_region": "face",
        "label": "semi-automatic labels from human wrinkle boxes (real photographs)",
        "photos": len(photos),
        "written": len(rows),
        "skipped": skipped,
        "label_pixels_per_box_pixel_mean": float(np.mean(label_fraction)) if label_fraction else None,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
