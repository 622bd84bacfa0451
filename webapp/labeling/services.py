"""Writes of the labeling app: save a wrinkle label version, build the dataset export, and the life of a
"train wrinkle model" job. Every change is audited.

The ground truth saved with a label is always recomputed here with `ml.wrinkles.labeling.label_wrinkles`
(Kim et al. 2023, Sec. 3.1); the browser's live preview is only a preview.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils.text import slugify

from webapp.analysis.models import ModelVersion, Result
from webapp.analysis.selectors import latest_result
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.labeling.models import RegionKind, ThresholdMethod, TrainingJob, WrinkleLabel
from webapp.runs import dispatch
from webapp.runs.models import ACTIVE_STATUSES, RunStatus
from webapp.runs.services import run_succeed
from webapp.spreadsheets import SafeCsvDictWriter
from webapp.studies.models import AnalysisKind, Photo, Study

logger = logging.getLogger(__name__)

WHOLE_PHOTO_MAX_SIDE = 1024
# Label images have sides divisible by 16: the U-Net needs it, and Algorithm 1 needs multiples of 8.
LABEL_SIZE_MULTIPLE = 16
WEIGHTED_MAP_SCALES = (2, 4, 8)
MIN_TRAINING_SUBJECTS = 4


class LabelingError(ValueError):
    """Bad labeling input; `message` is a sentence for the annotator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TrainingStateError(Exception):
    """A training job cannot be started now; the message says why."""


# Labeling image --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelingImage:
    """The pixels an annotator labels (RGB uint8) and how they map from the photo."""

    image: np.ndarray
    region: dict[str, Any]


def _load_photo(photo: Photo) -> np.ndarray:
    from ml.core.imageio import load_image

    with photo.image.open("rb") as handle:
        return load_image(handle.read())


def landmarks_result_with_face(photo: Photo, result_id: int | None = None) -> Result | None:
    """The photo's landmarks result (the given one, else the newest) if it found a face."""
    if result_id is not None:
        result = Result.objects.filter(
            pk=result_id, job__photo=photo, job__kind=AnalysisKind.LANDMARKS, job__status=RunStatus.SUCCEEDED
        ).first()
    else:
        result = latest_result(photo.pk, AnalysisKind.LANDMARKS)
    if result is None or not result.data.get("faces"):
        return None
    return result


def labeling_image(photo: Photo, kind: str, landmarks_result_id: int | None = None) -> LabelingImage:
    """The forehead-and-eye crop (640×640, `ml.wrinkles.crop`) or the whole photo scaled to at most
    1024 px with sides divisible by 16. Deterministic, so the browser and the save see the same pixels."""
    image = _load_photo(photo)
    height, width = image.shape[:2]
    if kind == RegionKind.FOREHEAD_EYE:
        from ml.core.subject import subject_landmarks
        from ml.wrinkles.crop import forehead_eye_crop

        result = landmarks_result_with_face(photo, landmarks_result_id)
        if result is None:
            raise LabelingError(
                "This photo has no landmarks result with a face, so the forehead-and-eye crop is not "
                "available; label the whole photo or run the landmark analysis first."
            )
        try:
            crop = forehead_eye_crop(subject_landmarks(result.data["faces"]))
        except ValueError as error:
            raise LabelingError(f"The forehead-and-eye crop cannot be made: {error}") from error
        return LabelingImage(
            crop.crop_image(image),
            {
                "kind": RegionKind.FOREHEAD_EYE.value,
                "matrix": crop.affine().tolist(),
                "width": crop.size,
                "height": crop.size,
                "landmarks_result": result.pk,
            },
        )
    if kind != RegionKind.WHOLE:
        raise LabelingError(f"Unknown region '{kind}'; choose one of {', '.join(RegionKind.values)}.")
    scale = min(1.0, WHOLE_PHOTO_MAX_SIDE / max(width, height))
    target_width = max(LABEL_SIZE_MULTIPLE, int(width * scale) // LABEL_SIZE_MULTIPLE * LABEL_SIZE_MULTIPLE)
    target_height = max(LABEL_SIZE_MULTIPLE, int(height * scale) // LABEL_SIZE_MULTIPLE * LABEL_SIZE_MULTIPLE)
    resized = cv2.resize(image, (target_width, target_height), interpolation=cv2.INTER_AREA)
    matrix = [[target_width / width, 0.0, 0.0], [0.0, target_height / height, 0.0]]
    return LabelingImage(
        resized,
        {
            "kind": RegionKind.WHOLE.value,
            "matrix": matrix,
            "width": target_width,
            "height": target_height,
            "landmarks_result": None,
        },
    )


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a grey (H, W) or RGB (H, W, 3) uint8/uint16 array."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ValueError("Could not encode the image as PNG.")
    return encoded.tobytes()


def decode_mask(content: bytes, shape: tuple[int, int]) -> np.ndarray:
    """A rough mask PNG from the browser as bool (H, W): pixels that are bright (any channel > 127) and,
    where the PNG has alpha, opaque (alpha > 127)."""
    decoded = cv2.imdecode(np.frombuffer(content, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise LabelingError("The rough mask is not a readable PNG image.")
    if decoded.dtype == np.uint16:
        decoded = (decoded >> 8).astype(np.uint8)
    if decoded.ndim == 3:
        opaque = decoded[..., 3] > 127 if decoded.shape[2] == 4 else True
        decoded = np.where(opaque, decoded[..., :3].max(axis=2), 0)
    if decoded.shape != shape:
        raise LabelingError(
            f"The rough mask is {decoded.shape[1]}×{decoded.shape[0]} but the labeling image is "
            f"{shape[1]}×{shape[0]}; reload the page."
        )
    return decoded > 127


def threshold_parameters(method: str, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters `label_wrinkles` takes for `method`, from validated form values."""
    if method == ThresholdMethod.BRADLEY_ROTH:
        return {"window": int(values["window"]), "percent": float(values["percent"])}
    if method == ThresholdMethod.OPENCV_GAUSSIAN:
        return {"block_size": int(values["block_size"]), "c": float(values["c"])}
    raise LabelingError(f"Unknown threshold method '{method}'.")


# Saving a label --------------------------------------------------------------------------------------


def label_save(
    *,
    photo: Photo,
    author: AbstractBaseUser,
    rough_mask_png: bytes,
    region_kind: str,
    landmarks_result_id: int | None,
    method: str,
    parameters: dict[str, Any],
    note: str = "",
    request: HttpRequest | None = None,
) -> WrinkleLabel:
    """Recompute the ground truth from the rough mask and store it as the photo's next label version.

    Raises LabelingError for a missing crop, an unreadable, wrongly sized or empty rough mask."""
    from ml.wrinkles.labeling import label_wrinkles, texture_map

    labeling = labeling_image(photo, region_kind, landmarks_result_id)
    rough = decode_mask(rough_mask_png, labeling.image.shape[:2])
    if not rough.any():
        raise LabelingError("The rough mask is empty: brush over the wrinkle regions first.")
    try:
        truth = label_wrinkles(labeling.image, rough, method=method, **parameters)
    except ValueError as error:
        raise LabelingError(str(error)) from error
    texture = np.rint(texture_map(labeling.image)).astype(np.uint8)
    files = {
        "image": encode_png(labeling.image),
        "rough_mask": encode_png(rough.astype(np.uint8) * 255),
        "ground_truth": encode_png(truth.astype(np.uint8) * 255),
        "texture_map": encode_png(texture),
    }
    with transaction.atomic():
        # The photo row lock serialises concurrent saves, so two annotators never get the same version.
        Photo.objects.select_for_update().filter(pk=photo.pk).first()
        latest = WrinkleLabel.objects.filter(photo=photo).aggregate(latest=Max("version"))["latest"] or 0
        label = WrinkleLabel(
            photo=photo,
            version=latest + 1,
            region=labeling.region,
            method=method,
            parameters=parameters,
            rough_pixels=int(rough.sum()),
            wrinkle_pixels=int(truth.sum()),
            note=note,
            author=author,
            author_username=author.get_username(),
        )
        for field_name, content in files.items():
            getattr(label, field_name).save(f"{field_name}.png", ContentFile(content), save=False)
        label.save()
        audit_record(
            action=AuditAction.CREATE,
            summary=f"Saved wrinkle label v{label.version} of photo {photo.pk}",
            actor=author,
            target=label,
            study_id=photo.study_id,
            request=request,
            details={
                "photo": photo.pk,
                "version": label.version,
                "method": method,
                "parameters": parameters,
                "region": labeling.region["kind"],
                "wrinkle_pixels": label.wrinkle_pixels,
            },
        )
    return label


def label_from_boxes(
    *,
    photo: Photo,
    author: AbstractBaseUser,
    yolo_boxes: str,
    method: str = ThresholdMethod.BRADLEY_ROTH,
    parameters: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> WrinkleLabel:
    """A semi-automatic label from human wrinkle boxes (YOLO lines ``class cx cy w h``, normalised to the
    photo): the boxes become the rough mask M on the whole-photo labeling image and the label is saved
    as the photo's next version, which the labeler opens as a starting point for correction.

    Raises LabelingError for unreadable lines or no box."""
    from ml.wrinkles.boxes import boxes_mask, parse_yolo_boxes

    labeling = labeling_image(photo, RegionKind.WHOLE)
    height, width = labeling.image.shape[:2]
    try:
        boxes = parse_yolo_boxes(yolo_boxes, width, height)
    except ValueError as error:
        raise LabelingError(f"The boxes are not YOLO lines 'class cx cy w h': {error}") from error
    if not boxes:
        raise LabelingError("No wrinkle box was given.")
    rough = boxes_mask(boxes, (height, width)).astype(np.uint8) * 255
    defaults = {
        ThresholdMethod.BRADLEY_ROTH: {"window": 15, "percent": 15.0},
        ThresholdMethod.OPENCV_GAUSSIAN: {"block_size": 11, "c": 1.0},
    }
    return label_save(
        photo=photo,
        author=author,
        rough_mask_png=encode_png(rough),
        region_kind=RegionKind.WHOLE,
        landmarks_result_id=None,
        method=method,
        parameters=parameters if parameters is not None else defaults[ThresholdMethod(method)],
        note=f"Semi-automatic label from {len(boxes)} human wrinkle boxes (rough mask = the boxes).",
        request=request,
    )


# Dataset export --------------------------------------------------------------------------------------

INDEX_COLUMNS = [
    "name",
    "image",
    "mask",
    "face",
    "rough_mask",
    "texture_map",
    "weighted_s2",
    "weighted_s4",
    "weighted_s8",
    "subject",
    "visit",
    "view",
    "photo",
    "label_id",
    "version",
    "author",
    "created_at",
    "method",
    "parameters",
    "region",
    "wrinkle_fraction",
]

EXPORT_README = """Facet wrinkle label dataset
===========================

One row of index.csv per label (the latest version of each photo's label, unless a selection was
exported). Only pseudonymous references: subject code, visit label, view, internal photo and label ids.

images/NAME.png     the labeled image (forehead-and-eye crop from landmarks, or the scaled whole photo;
                    `region` in index.csv holds the 2x3 matrix photo -> image)
masks/NAME.png      ground truth (255 = wrinkle), recomputed on the server by ml.wrinkles.labeling
rough/NAME.png      the annotator's rough mask M
texture/NAME.png    texture map T (Kim et al. 2023, Eq. 1), clipped to [0, 255] and rounded
weighted/NAME_sS.png  weighted wrinkle map W_s (Algorithm 1) for s = 2, 4, 8, as 16-bit PNG:
                    W_s = value / 65535

The `face` column repeats the subject code: ml.wrinkles.train groups folds by it, so images of one
subject never straddle training and test folds. The folder is a valid `python -m ml wrinkles train
--data DIR` input.
"""


def sample_name(label: WrinkleLabel) -> str:
    """A file-name-safe pseudonymous reference: subject, visit, view, photo id and label version."""
    photo = label.photo
    parts = [
        slugify(photo.visit.subject.code) or "subject",
        slugify(photo.visit.label) or "visit",
        photo.view,
    ]
    return "_".join([*parts, f"p{photo.pk}", f"v{label.version}"])


def _read(field) -> bytes:
    with field.open("rb") as handle:
        return handle.read()


def label_dataset_files(label: WrinkleLabel) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    """The index row and the (path, bytes) files of one label in the export layout."""
    from ml.wrinkles.losses import weighted_wrinkle_map

    name = sample_name(label)
    truth_png = _read(label.ground_truth)
    truth = cv2.imdecode(np.frombuffer(truth_png, dtype=np.uint8), cv2.IMREAD_GRAYSCALE) > 127
    files = [
        (f"images/{name}.png", _read(label.image)),
        (f"masks/{name}.png", truth_png),
        (f"rough/{name}.png", _read(label.rough_mask)),
        (f"texture/{name}.png", _read(label.texture_map)),
    ]
    row = {
        "name": name,
        "image": f"images/{name}.png",
        "mask": f"masks/{name}.png",
        "face": label.photo.visit.subject.code,
        "rough_mask": f"rough/{name}.png",
        "texture_map": f"texture/{name}.png",
    }
    for scale in WEIGHTED_MAP_SCALES:
        weights = weighted_wrinkle_map(truth, scale)[0, 0].numpy()
        path = f"weighted/{name}_s{scale}.png"
        files.append((path, encode_png(np.rint(weights * 65535).astype(np.uint16))))
        row[f"weighted_s{scale}"] = path
    row.update(
        {
            "subject": label.photo.visit.subject.code,
            "visit": label.photo.visit.label,
            "view": label.photo.view,
            "photo": str(label.photo_id),
            "label_id": str(label.pk),
            "version": str(label.version),
            "author": label.author_username,
            "created_at": label.created_at.isoformat(),
            "method": label.method,
            "parameters": json.dumps(label.parameters, sort_keys=True),
            "region": json.dumps(label.region, sort_keys=True),
            "wrinkle_fraction": f"{label.wrinkle_fraction:.6f}",
        }
    )
    return row, files


def index_csv(rows: Iterable[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = SafeCsvDictWriter(buffer, fieldnames=INDEX_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


class _ChunkSink:
    """A write-only, non-seekable file for zipfile, emptied after each member (streamed ZIP)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def stream_dataset_zip(labels: Iterable[WrinkleLabel]) -> Iterator[bytes]:
    """The export ZIP, produced label by label so that memory stays flat however large the study."""
    sink = _ChunkSink()
    rows = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for label in labels:
            row, files = label_dataset_files(label)
            rows.append(row)
            for path, content in files:
                archive.writestr(path, content)  # PNGs are compressed already
            yield sink.take()
        archive.writestr("index.csv", index_csv(rows), compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("README.txt", EXPORT_README, compress_type=zipfile.ZIP_DEFLATED)
    yield sink.take()


def dataset_write(labels: Iterable[WrinkleLabel], folder: str | Path) -> list[dict[str, str]]:
    """Write the export layout into `folder` (for training); returns the index rows."""
    folder = Path(folder)
    rows = []
    for label in labels:
        row, files = label_dataset_files(label)
        rows.append(row)
        for path, content in files:
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    (folder / "index.csv").write_bytes(index_csv(rows))
    return rows


def export_audit(
    *, study: Study, labels: list[WrinkleLabel], actor: AbstractBaseUser, request: HttpRequest | None = None
) -> None:
    audit_record(
        action=AuditAction.EXPORT,
        summary=f"Exported {len(labels)} wrinkle label(s) of study {study.pk} as a dataset",
        actor=actor,
        target=study,
        request=request,
        details={"labels": [label.pk for label in labels], "photos": [label.photo_id for label in labels]},
    )


# Training jobs ---------------------------------------------------------------------------------------


@transaction.atomic
def training_job_start(
    *,
    study: Study,
    labels: list[WrinkleLabel],
    parameters: dict[str, Any],
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> TrainingJob:
    """Queue a "train wrinkle model" job on the GPU queue for these label versions."""
    subjects = {label.photo.visit.subject_id for label in labels}
    if len(subjects) < MIN_TRAINING_SUBJECTS:
        raise TrainingStateError(
            f"Training needs labels of at least {MIN_TRAINING_SUBJECTS} subjects (cross-validation folds are "
            f"split by subject); this study has labels of {len(subjects)}."
        )
    if TrainingJob.objects.filter(study=study, status__in=ACTIVE_STATUSES).exists():
        raise TrainingStateError("A training job of this study is already queued or running.")
    job = TrainingJob.objects.create(
        study=study,
        parameters=parameters,
        label_ids=[label.pk for label in labels],
        requested_by=actor,
        progress_message="Queued",
    )
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Started wrinkle training job {job.pk} on {len(labels)} label(s)",
        actor=actor,
        target=job,
        request=request,
        details={"parameters": parameters, "labels": job.label_ids},
    )
    dispatch.send_run_on_commit(job)
    return job


def training_job_succeed(
    *, job_id: int, attempt: int, metrics: dict[str, Any], model_version: ModelVersion
) -> bool:
    """Finish the claimed attempt of a training job with its cross-validation figures and model version."""

    def record(run: TrainingJob) -> None:
        run.metrics = metrics
        run.model_version = model_version

    message = f"Registered {model_version.name} {model_version.version}"
    finished = run_succeed(TrainingJob, run_id=job_id, attempt=attempt, message=message, record=record)
    return finished is not None
