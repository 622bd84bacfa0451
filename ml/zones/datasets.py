"""Zone and face-part datasets in the ADE20K layout with ODGT index files.

As in the CSAIL semantic-segmentation code used by Tuazon & Mortezaei, every task has ODGT files with
one JSON object per line: ``{"fpath_img", "fpath_segm", "width", "height"}`` (paths relative to the
dataset root). Layout::

    ROOT/images/{training,validation}/NAME.jpg
    ROOT/annotations/{set1,set2,set3,parts}/{training,validation}/NAME.png
    ROOT/{set1,set2,set3,parts}_{training,validation}.odgt
    ROOT/dataset.json          zone sets, sources and counts

``setK`` label maps hold 0 = background and ``1..k`` = the ``k`` zones of zone set K (atlas order);
``parts`` label maps hold the six FASSEG classes and exist only for images with human face-part masks.
Zone labels come from the landmark model, replaced zone by zone by human CVAT annotations where present.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ml.core.subject import subject_face
from ml.zones.atlas import N_ZONES, ZONE_INDEX
from ml.zones.crop import crop_image, crop_labels, face_crop_matrix
from ml.zones.cvat import ZoneAnnotation, merge_with_landmark_masks
from ml.zones.landmark_model import render_zone_masks
from ml.zones.zone_sets import N_SETS, load_zone_sets, set_overlaps

SPLITS: tuple[str, ...] = ("training", "validation")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
TASKS: tuple[str, ...] = tuple(f"set{k}" for k in range(1, N_SETS + 1)) + ("parts",)
DEFAULT_CROP_SIZE = 256
CROPS_FILE = "crops.json"


class DatasetError(ValueError):
    """A dataset folder or index file is missing or malformed."""


@dataclass(frozen=True)
class OdgtRecord:
    """One ODGT line."""

    fpath_img: str
    fpath_segm: str
    width: int
    height: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "fpath_img": self.fpath_img,
                "fpath_segm": self.fpath_segm,
                "width": self.width,
                "height": self.height,
            }
        )


def write_odgt(path: Path, records: Iterable[OdgtRecord]) -> int:
    """Write records one JSON per line; returns how many."""
    lines = [record.to_json() for record in records]
    path.write_text("".join(line + "\n" for line in lines))
    return len(lines)


def read_odgt(path: str | Path) -> list[OdgtRecord]:
    """Parse an ODGT file; raises :class:`DatasetError` naming the bad line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            f"ODGT index '{path}' does not exist; build the dataset with 'python -m ml zones build-dataset'."
        )
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            records.append(
                OdgtRecord(
                    str(item["fpath_img"]), str(item["fpath_segm"]), int(item["width"]), int(item["height"])
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise DatasetError(f"{path}:{number}: not an ODGT record ({error}).") from error
    return records


def load_sample(root: Path, record: OdgtRecord) -> tuple[np.ndarray, np.ndarray]:
    """RGB image and label map of one record, checked against the record's size."""
    image = np.asarray(Image.open(root / record.fpath_img).convert("RGB"))
    labels = np.asarray(Image.open(root / record.fpath_segm))
    if image.shape[:2] != (record.height, record.width) or labels.shape != image.shape[:2]:
        raise DatasetError(
            f"{record.fpath_img}: image {image.shape[:2]} / labels {labels.shape} do not match "
            f"the index size {(record.height, record.width)}."
        )
    return image, labels


def split_of(name: str, validation_fraction: float) -> str:
    """Deterministic split from a hash of the sample name (stable when the source set grows)."""
    if validation_fraction >= 1.0:
        return "validation"
    bucket = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "validation" if bucket < validation_fraction else "training"


def sample_name(source: str, relative: Path) -> str:
    """Flat, file-system-safe sample name from a source tag and a path inside that source."""
    stem = "__".join(relative.with_suffix("").parts)
    return f"{source}__" + "".join(c if c.isalnum() or c in "-_" else "-" for c in stem)


def iter_images(folder: Path) -> Iterator[Path]:
    """Image files under ``folder`` (recursive, sorted)."""
    if not folder.is_dir():
        raise DatasetError(f"Face folder '{folder}' does not exist.")
    yield from sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def set_label_map(masks: np.ndarray, zone_set: list[str], human: np.ndarray | None = None) -> np.ndarray:
    """Label map of one zone set; where zones of the set overlap, human-annotated zones win.

    Without human annotations, landmark masks of one set never overlap (:mod:`ml.zones.zone_sets`),
    so any overlap is reported as an error.
    """
    overlaps = set_overlaps(masks, zone_set)
    if overlaps and (human is None or not human.any()):
        described = ", ".join(f"{a}/{b} ({n} px)" for a, b, n in overlaps[:5])
        raise DatasetError(f"Zones of one set overlap in landmark labels: {described}.")
    labels = np.zeros(masks.shape[1:], dtype=np.uint8)
    order = list(enumerate(zone_set, start=1))
    if human is not None:
        order.sort(key=lambda item: bool(human[ZONE_INDEX[item[1]]]))  # human zones painted last
    for position, code in order:
        labels[masks[ZONE_INDEX[code]]] = position
    return labels


def masks_from_set_labels(set_labels: list[np.ndarray], sets: list[list[str]]) -> np.ndarray:
    """The 33 zone masks back from the label maps of the three sets (first set holding a zone wins)."""
    masks = np.zeros((N_ZONES, *set_labels[0].shape), dtype=bool)
    filled = np.zeros(N_ZONES, dtype=bool)
    for labels, zone_set in zip(set_labels, sets, strict=True):
        for position, code in enumerate(zone_set, start=1):
            index = ZONE_INDEX[code]
            if not filled[index]:
                masks[index] = labels == position
                filled[index] = True
    return masks


class DatasetWriter:
    """Writes samples into an ADE20K-layout folder and the ODGT indexes on :meth:`close`."""

    def __init__(
        self, root: Path, sets: list[list[str]] | None = None, validation_fraction: float = 0.2
    ) -> None:
        if not 0.0 <= validation_fraction <= 1.0:
            raise DatasetError(f"validation_fraction must be in [0, 1], got {validation_fraction}.")
        self.root = Path(root)
        self.sets = sets or load_zone_sets()
        self.validation_fraction = validation_fraction
        self.records: dict[tuple[str, str], list[OdgtRecord]] = {(t, s): [] for t in TASKS for s in SPLITS}
        self.sources: dict[str, int] = {}
        for task in TASKS:
            for split in SPLITS:
                (self.root / "annotations" / task / split).mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            (self.root / "images" / split).mkdir(parents=True, exist_ok=True)

    def add(
        self,
        name: str,
        image: np.ndarray,
        zone_masks: np.ndarray,
        parts: np.ndarray | None = None,
        source: str = "",
        human_zones: np.ndarray | None = None,
    ) -> str:
        """Add one sample; returns its split."""
        height, width = image.shape[:2]
        if zone_masks.shape != (N_ZONES, height, width):
            raise DatasetError(
                f"{name}: zone masks {zone_masks.shape} do not match the image {image.shape[:2]}."
            )
        split = split_of(name, self.validation_fraction)
        image_rel = f"images/{split}/{name}.jpg"
        Image.fromarray(image).save(self.root / image_rel, quality=95)
        label_maps = [
            (f"set{k}", set_label_map(zone_masks, zone_set, human_zones))
            for k, zone_set in enumerate(self.sets, start=1)
        ]
        if parts is not None:
            if parts.shape != (height, width):
                raise DatasetError(f"{name}: face-part labels {parts.shape} do not match the image.")
            label_maps.append(("parts", parts.astype(np.uint8)))
        for task, labels in label_maps:
            segm_rel = f"annotations/{task}/{split}/{name}.png"
            Image.fromarray(labels).save(self.root / segm_rel)
            self.records[(task, split)].append(OdgtRecord(image_rel, segm_rel, width, height))
        self.sources[source] = self.sources.get(source, 0) + 1
        return split

    def close(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the ODGT files and ``dataset.json``; returns the summary."""
        counts = {}
        for (task, split), records in self.records.items():
            counts[f"{task}_{split}"] = write_odgt(self.root / f"{task}_{split}.odgt", records)
        summary = {
            "layout": "ADE20K + ODGT",
            "sets": self.sets,
            "counts": counts,
            "sources": self.sources,
            "validation_fraction": self.validation_fraction,
            **(extra or {}),
        }
        (self.root / "dataset.json").write_text(json.dumps(summary, indent=1) + "\n")
        return summary


def read_dataset_sets(root: Path) -> list[list[str]]:
    """The zone sets a dataset was built with."""
    meta = Path(root) / "dataset.json"
    if not meta.is_file():
        raise DatasetError(f"'{root}' is not a zones dataset (no dataset.json).")
    return json.loads(meta.read_text())["sets"]


def build_dataset(
    out: Path,
    face_dirs: list[Path],
    fasseg_dirs: list[Path] | None = None,
    annotations: dict[str, ZoneAnnotation] | None = None,
    limit: int | None = None,
    validation_fraction: float = 0.2,
    landmarker: Any = None,
    crop_size: int | None = DEFAULT_CROP_SIZE,
) -> dict[str, Any]:
    """Build the training data: landmark zone pseudo-labels for every face found, FASSEG human face parts.

    ``face_dirs`` are folders of photos (e.g. MEBeauty ``originals``); each of ``fasseg_dirs`` has
    ``images/`` and ``masks/`` (e.g. ``fasseg/frontal/train``); ``limit`` caps the photos of each source
    folder. ``annotations`` maps image stems to human CVAT zones, which replace landmark labels zone by
    zone. Photos without a detectable face are skipped and listed. With ``crop_size``, every sample is
    the square face crop of :mod:`ml.zones.crop` (``crop_size``² px; face-part pixels outside the photo
    are 255 = ignore) and ``crops.json`` stores each sample's photo → crop matrix.
    """
    from ml.core.imageio import load_image
    from ml.core.landmarks import detect_faces_with_landmarks

    writer = DatasetWriter(out, validation_fraction=validation_fraction)
    annotations = annotations or {}
    skipped: list[str] = []
    human_used = 0
    crops: dict[str, list[list[float]]] = {}
    jobs: list[tuple[str, Path, Path | None]] = []
    for folder in face_dirs:
        images = list(iter_images(folder))[:limit]
        jobs += [(sample_name(folder.name, p.relative_to(folder)), p, None) for p in images]
    for fasseg_dir in fasseg_dirs or []:
        for image_path in list(iter_images(fasseg_dir / "images"))[:limit]:
            jobs.append(
                (
                    sample_name("fasseg", image_path.relative_to(fasseg_dir / "images")),
                    image_path,
                    fasseg_dir / "masks" / f"{image_path.stem}.png",
                )
            )
    for name, image_path, parts_path in jobs:
        image = load_image(image_path)
        faces = (
            detect_faces_with_landmarks(image, detector=landmarker)
            if landmarker is not None
            else (detect_faces_with_landmarks(image))
        )
        if not faces:
            skipped.append(str(image_path))
            continue
        best = subject_face(faces)
        masks = render_zone_masks(best.landmarks, image.shape)
        annotation = annotations.get(image_path.stem)
        masks = merge_with_landmark_masks(masks, annotation)
        human = annotation.annotated if annotation is not None else None
        if annotation is not None:
            human_used += 1
        parts = None
        if parts_path is not None and parts_path.is_file():
            parts = np.asarray(Image.open(parts_path))
        if crop_size:
            matrix = face_crop_matrix(best.landmarks, crop_size)
            crops[name] = matrix.round(6).tolist()
            image = crop_image(image, matrix, crop_size)
            masks = np.stack([crop_labels(m.astype(np.uint8), matrix, crop_size) > 0 for m in masks])
            if parts is not None:
                parts = crop_labels(parts.astype(np.uint8), matrix, crop_size, outside=255)
        writer.add(
            name,
            image,
            masks,
            parts,
            source="fasseg" if parts_path else image_path.parent.name,
            human_zones=human,
        )
    if crop_size:
        (Path(out) / CROPS_FILE).write_text(json.dumps(crops) + "\n")
    return writer.close(
        {
            "skipped_no_face": skipped,
            "images_with_human_zones": human_used,
            "crop_size": crop_size,
            "face_dirs": [str(f) for f in face_dirs],
            "fasseg_dirs": [str(f) for f in fasseg_dirs or []],
        }
    )


def merge_datasets(out: Path, roots: list[Path]) -> dict[str, Any]:
    """Merge zones datasets built separately (e.g. in parallel) into ``out``; splits are kept as built.

    All datasets must use the same zone sets and crop size, and sample names must be unique.
    """
    import shutil

    if not roots:
        raise DatasetError("Nothing to merge: no dataset folders given.")
    metas = [json.loads((Path(root) / "dataset.json").read_text()) for root in roots]
    for root, meta in zip(roots, metas, strict=True):
        if meta["sets"] != metas[0]["sets"] or meta.get("crop_size") != metas[0].get("crop_size"):
            raise DatasetError(f"'{root}' uses other zone sets or crop size than '{roots[0]}'.")
    out = Path(out)
    records: dict[str, list[OdgtRecord]] = {}
    crops: dict[str, Any] = {}
    for root in map(Path, roots):
        for task in TASKS:
            for split in SPLITS:
                for record in read_odgt(root / f"{task}_{split}.odgt"):
                    for relative in (record.fpath_img, record.fpath_segm):
                        target = out / relative
                        if not target.exists():
                            target.parent.mkdir(parents=True, exist_ok=True)
                            shutil.copyfile(root / relative, target)
                    records.setdefault(f"{task}_{split}", []).append(record)
        if (root / CROPS_FILE).is_file():
            part = json.loads((root / CROPS_FILE).read_text())
            clash = sorted(set(part) & set(crops))
            if clash:
                raise DatasetError(f"Sample names occur in more than one dataset: {', '.join(clash[:3])}.")
            crops.update(part)
    counts = {key: write_odgt(out / f"{key}.odgt", items) for key, items in sorted(records.items())}
    sources: dict[str, int] = {}
    for meta in metas:
        for source, count in meta["sources"].items():
            sources[source] = sources.get(source, 0) + count
    if crops:
        (out / CROPS_FILE).write_text(json.dumps(crops) + "\n")
    summary = {
        **metas[0],
        "counts": counts,
        "sources": sources,
        "skipped_no_face": [path for meta in metas for path in meta.get("skipped_no_face", [])],
        "merged_from": [str(root) for root in roots],
        "face_dirs": [d for meta in metas for d in meta.get("face_dirs", [])],
        "fasseg_dirs": [d for meta in metas for d in meta.get("fasseg_dirs", [])],
    }
    (out / "dataset.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
