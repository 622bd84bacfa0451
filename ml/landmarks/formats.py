"""68-point keypoint datasets (iBUG-300W order) and their file formats.

A :class:`KeypointDataset` is a list of images, each with a fixed ``train``/``val`` split and face
:class:`Instance` objects (box, 68 points, visibility, :class:`Provenance`). Importers read iBUG ``.pts``,
dlib ``imglab`` XML and COCO keypoints; exporters write YOLO-pose (``kpt_shape: [68, 3]`` with the
68-point ``flip_idx``), COCO keypoints, dlib XML and ``.pts``. Immutable versions live in
:mod:`ml.landmarks.keypoint_datasets`.
"""

from __future__ import annotations

import json
import math
import os
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

NUM_KEYPOINTS = 68
SPLITS = ("train", "val")
HUMAN = "human"
FACE_CLASS = "face"
VISIBLE = 2  # COCO/YOLO visibility: 0 not labelled, 1 labelled but occluded, 2 visible


def _mirror(first: int, last: int) -> dict[int, int]:
    """Pairs of a contour that mirrors onto itself: ``first↔last``, ``first+1↔last-1``, …"""
    return {first + offset: last - offset for offset in range(last - first + 1)}


def _ibug68_flip_idx() -> tuple[int, ...]:
    """Index each point takes after a horizontal flip, for the iBUG-68 scheme.

    The eyes are not two mirrored contours: both run clockwise from their outer/inner corner, so the
    right eye's 36..41 (outer corner, two upper lid points, inner corner, two lower lid points) maps
    onto the left eye's 45, 44, 43, 42, 47, 46.
    """
    mapping: dict[int, int] = {}
    mapping.update(_mirror(0, 16))  # jaw
    mapping.update(_mirror(17, 26))  # eyebrows 17..21 ↔ 26..22
    mapping.update({index: index for index in range(27, 31)})  # nose bridge on the midline
    mapping.update(_mirror(31, 35))  # nostrils
    mapping.update({36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46})
    mapping.update({45: 36, 44: 37, 43: 38, 42: 39, 47: 40, 46: 41})
    mapping.update(_mirror(48, 54))  # outer lips, upper
    mapping.update(_mirror(55, 59))  # outer lips, lower
    mapping.update(_mirror(60, 64))  # inner lips, upper
    mapping.update(_mirror(65, 67))  # inner lips, lower
    return tuple(mapping[index] for index in range(NUM_KEYPOINTS))


IBUG68_FLIP_IDX: tuple[int, ...] = _ibug68_flip_idx()


class DatasetFormatError(ValueError):
    """A dataset file is malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class Provenance:
    """Who made a label: ``source`` is ``"human"`` or ``"<model>@<version>"``.

    Model labels carry the model's ``confidence``; human labels may carry ``author`` and ``created_at``.
    """

    source: str = HUMAN
    confidence: float | None = None
    author: str | None = None
    created_at: str | None = None

    def __post_init__(self) -> None:
        if self.source != HUMAN and not re.fullmatch(r"[^@\s]+@[^@\s]+", self.source):
            raise ValueError(f"Provenance source must be 'human' or 'model@version', got '{self.source}'.")
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"Provenance confidence must lie in [0, 1], got {self.confidence}.")

    @property
    def is_human(self) -> bool:
        return self.source == HUMAN

    @classmethod
    def model(cls, name: str, version: str, confidence: float | None = None) -> Provenance:
        """A label predicted by ``name@version``, with its ``confidence`` when it has one in [0, 1]."""
        return cls(
            source=f"{name}@{version}", confidence=None if confidence is None else round(float(confidence), 4)
        )

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Provenance:
        return cls(**data) if data else cls()


@dataclass(frozen=True, eq=False)  # numpy fields: compare ``as_dict()`` instead of ``==``
class Instance:
    """One labelled face: box ``(x0, y0, x1, y1)``, ``(68, 2)`` points, ``(68,)`` visibility, provenance."""

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    visibility: np.ndarray = field(default_factory=lambda: np.full(NUM_KEYPOINTS, VISIBLE, dtype=np.int64))
    provenance: Provenance = field(default_factory=Provenance)

    def __post_init__(self) -> None:
        keypoints = np.asarray(self.keypoints, dtype=np.float64)
        visibility = np.asarray(self.visibility, dtype=np.int64)
        if keypoints.shape != (NUM_KEYPOINTS, 2):
            raise ValueError(f"An instance needs ({NUM_KEYPOINTS}, 2) keypoints, got {keypoints.shape}.")
        if visibility.shape != (NUM_KEYPOINTS,) or not np.isin(visibility, (0, 1, 2)).all():
            raise ValueError(f"Visibility must be {NUM_KEYPOINTS} values in {{0, 1, 2}}.")
        box = tuple(float(value) for value in self.box)
        if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
            raise ValueError(f"A box is (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {self.box}.")
        object.__setattr__(self, "keypoints", keypoints)
        object.__setattr__(self, "visibility", visibility)
        object.__setattr__(self, "box", box)

    @classmethod
    def from_points(
        cls, keypoints: np.ndarray, provenance: Provenance | None = None, margin: float = 0.1
    ) -> Instance:
        """An instance whose box is the points' extent grown by ``margin`` of its size on each side."""
        points = np.asarray(keypoints, dtype=np.float64)
        low, high = points.min(axis=0), points.max(axis=0)
        pad = margin * (high - low)
        box = (*(low - pad), *(high + pad))
        return cls(box=box, keypoints=points, provenance=provenance or Provenance())

    def as_dict(self) -> dict[str, Any]:
        return {
            "box": [round(value, 3) for value in self.box],
            "keypoints": [[round(float(x), 3), round(float(y), 3)] for x, y in self.keypoints],
            "visibility": [int(value) for value in self.visibility],
            "provenance": self.provenance.as_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Instance:
        return cls(
            box=tuple(data["box"]),
            keypoints=np.asarray(data["keypoints"], dtype=np.float64),
            visibility=np.asarray(data.get("visibility", [VISIBLE] * NUM_KEYPOINTS)),
            provenance=Provenance.from_dict(data.get("provenance")),
        )


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One image of a dataset: ``path`` (absolute, or relative to the dataset's image root), size, split."""

    path: str
    width: int
    height: int
    split: str = "train"
    instances: tuple[Instance, ...] = ()

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"Split must be one of {SPLITS}, got '{self.split}'.")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"Image size must be positive, got {self.width}×{self.height} for {self.path}.")
        object.__setattr__(self, "instances", tuple(self.instances))

    def with_instances(self, instances: Iterable[Instance]) -> ImageRecord:
        return replace(self, instances=tuple(instances))

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "split": self.split,
            "instances": [instance.as_dict() for instance in self.instances],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageRecord:
        return cls(
            path=data["path"],
            width=int(data["width"]),
            height=int(data["height"]),
            split=data.get("split", "train"),
            instances=tuple(Instance.from_dict(item) for item in data.get("instances", [])),
        )


@dataclass(frozen=True, eq=False)
class KeypointDataset:
    """Images with 68-point face instances; ``image_root`` resolves relative image paths."""

    images: tuple[ImageRecord, ...]
    image_root: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", tuple(self.images))
        paths = [record.path for record in self.images]
        if len(set(paths)) != len(paths):
            raise ValueError("A dataset lists each image once; duplicate image paths were given.")

    def resolve(self, record: ImageRecord) -> Path:
        """Absolute path of an image."""
        path = Path(record.path)
        if path.is_absolute() or self.image_root is None:
            return path
        return Path(self.image_root) / path

    def split(self, name: str) -> list[ImageRecord]:
        return [record for record in self.images if record.split == name]

    def counts(self) -> dict[str, Any]:
        """Image and instance counts per split and instance counts per provenance source."""
        by_source: dict[str, int] = {}
        for record in self.images:
            for instance in record.instances:
                by_source[instance.provenance.source] = by_source.get(instance.provenance.source, 0) + 1
        counts: dict[str, Any] = {}
        for split in SPLITS:
            records = self.split(split)
            counts[f"{split}_images"] = len(records)
            counts[f"{split}_labelled_images"] = sum(1 for record in records if record.instances)
            counts[f"{split}_instances"] = sum(len(record.instances) for record in records)
        counts["total_instances"] = counts["train_instances"] + counts["val_instances"]
        counts["by_source"] = dict(sorted(by_source.items()))
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "kpt_shape": [NUM_KEYPOINTS, 3],
            "scheme": "ibug-68",
            "image_root": self.image_root,
            "images": [record.as_dict() for record in self.images],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeypointDataset:
        if data.get("kpt_shape", [NUM_KEYPOINTS, 3])[0] != NUM_KEYPOINTS:
            raise DatasetFormatError(
                f"Expected a {NUM_KEYPOINTS}-point dataset, got kpt_shape {data['kpt_shape']}."
            )
        return cls(
            images=tuple(ImageRecord.from_dict(item) for item in data["images"]),
            image_root=data.get("image_root"),
        )


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` read from the file header (EXIF orientation applied, like ``load_image``)."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            oriented = ImageOps.exif_transpose(image)
            return int(oriented.width), int(oriented.height)
    except (OSError, ValueError) as error:
        raise DatasetFormatError(f"Cannot read the size of image {path}: {error}") from error


def flip_keypoints(keypoints: np.ndarray, width: float) -> np.ndarray:
    """Mirror ``(68, 2)`` points horizontally in an image of ``width`` pixels and reorder by ``flip_idx``."""
    points = np.asarray(keypoints, dtype=np.float64)
    mirrored = np.column_stack([width - 1.0 - points[:, 0], points[:, 1]])
    return mirrored[list(IBUG68_FLIP_IDX)]


# ----------------------------------------------------------------------------------------- iBUG .pts


def read_pts(path: str | Path, one_based: bool = True) -> np.ndarray:
    """``(68, 2)`` 0-based points of an iBUG ``.pts`` file (300-W files are 1-based, hence ``one_based``)."""
    return parse_pts(Path(path).read_bytes(), str(path), one_based)


def parse_pts(content: bytes | str, path: str = "input", one_based: bool = True) -> np.ndarray:
    """:func:`read_pts` of the file's content; ``path`` names it in error messages."""
    text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) else content
    match = re.search(r"n_points:\s*(\d+)\s*\{(.*?)\}", text, flags=re.DOTALL)
    if match is None:
        raise DatasetFormatError(f"{path}: not an iBUG .pts file (no 'n_points' and '{{ … }}' block).")
    declared = int(match.group(1))
    try:
        values = [float(token) for token in match.group(2).split()]
    except ValueError as error:
        raise DatasetFormatError(f"{path}: non-numeric coordinate ({error}).") from error
    if declared != NUM_KEYPOINTS or len(values) != 2 * NUM_KEYPOINTS:
        raise DatasetFormatError(
            f"{path}: expected {NUM_KEYPOINTS} points, header says {declared}, found {len(values) // 2}."
        )
    points = np.asarray(values, dtype=np.float64).reshape(NUM_KEYPOINTS, 2)
    return points - 1.0 if one_based else points


def write_pts(path: str | Path, keypoints: np.ndarray, one_based: bool = True) -> None:
    """Write ``(68, 2)`` 0-based points as an iBUG ``.pts`` file."""
    points = np.asarray(keypoints, dtype=np.float64) + (1.0 if one_based else 0.0)
    lines = ["version: 1", f"n_points: {len(points)}", "{"]
    lines += [f"{x:.3f} {y:.3f}" for x, y in points]
    lines.append("}")
    Path(path).write_text("\n".join(lines) + "\n")


def import_ibug_pts(
    image_paths: Sequence[str | Path], split: str = "train", image_root: str | Path | None = None
) -> KeypointDataset:
    """A human-labelled dataset from images whose landmarks sit beside them as ``<stem>.pts`` files.

    Every ``<stem>_<n>.pts`` beside an image adds a further face (the 300-W convention for several faces).
    """
    records = []
    root = Path(image_root) if image_root is not None else None
    for image_path in map(Path, image_paths):
        pts_files = sorted(
            {image_path.with_suffix(".pts"), *image_path.parent.glob(f"{image_path.stem}_*.pts")}
        )
        pts_files = [candidate for candidate in pts_files if candidate.is_file()]
        if not pts_files:
            raise DatasetFormatError(f"No .pts file beside {image_path}.")
        width, height = image_size(image_path)
        instances = tuple(Instance.from_points(read_pts(candidate)) for candidate in pts_files)
        stored = str(image_path.relative_to(root)) if root is not None else str(image_path)
        records.append(ImageRecord(stored, width, height, split, instances))
    return KeypointDataset(tuple(records), str(root) if root is not None else None)


# ------------------------------------------------------------------------------------ dlib imglab XML


def read_dlib_xml(path: str | Path) -> KeypointDataset:
    """A dataset from a dlib ``imglab`` XML file (``<image file><box top left width height><part…>``).

    Relative ``file`` attributes resolve against the XML's folder. Boxes marked ``ignore='1'`` are skipped;
    a box with no parts is an error, as is any part name outside 0..67.
    """
    path = Path(path)
    return parse_dlib_xml(path.read_bytes(), str(path), base=path.parent)


def parse_dlib_xml(content: bytes, path: str = "input", base: Path | None = None) -> KeypointDataset:
    """:func:`read_dlib_xml` of the file's content; relative ``file`` attributes resolve against ``base``
    (the ``file`` attribute as given without it); ``path`` names the input in error messages."""
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError as error:
        raise DatasetFormatError(f"{path}: invalid XML ({error}).") from error
    records = []
    for image in root.iter("image"):
        file_name = image.get("file")
        if not file_name:
            raise DatasetFormatError(f"{path}: an <image> has no 'file' attribute.")
        image_path = Path(file_name) if Path(file_name).is_absolute() or base is None else base / file_name
        width = image.get("width")
        height = image.get("height")
        size = (int(width), int(height)) if width and height else image_size(image_path)
        instances = []
        for box in image.iter("box"):
            if box.get("ignore") == "1":
                continue
            left, top = float(box.get("left", 0)), float(box.get("top", 0))
            box_tuple = (left, top, left + float(box.get("width", 0)), top + float(box.get("height", 0)))
            points = np.full((NUM_KEYPOINTS, 2), np.nan)
            for part in box.iter("part"):
                index = int(part.get("name", "-1"))
                if not 0 <= index < NUM_KEYPOINTS:
                    raise DatasetFormatError(f"{path}: part name {part.get('name')} is outside 0..67.")
                points[index] = (float(part.get("x", "nan")), float(part.get("y", "nan")))
            if np.isnan(points).any():
                raise DatasetFormatError(f"{path}: a box in {file_name} lacks some of the 68 parts.")
            instances.append(Instance(box=box_tuple, keypoints=points))
        records.append(ImageRecord(str(image_path), size[0], size[1], "train", tuple(instances)))
    return KeypointDataset(tuple(records))


def write_dlib_xml(dataset: KeypointDataset, path: str | Path) -> None:
    """Write a dlib ``imglab`` XML file (image sizes stored as ``width``/``height`` attributes)."""
    root = ElementTree.Element("dataset")
    ElementTree.SubElement(root, "name").text = "Facet 68-point landmarks"
    images = ElementTree.SubElement(root, "images")
    for record in dataset.images:
        image = ElementTree.SubElement(
            images,
            "image",
            file=str(dataset.resolve(record)),
            width=str(record.width),
            height=str(record.height),
        )
        for instance in record.instances:
            x0, y0, x1, y1 = instance.box
            box = ElementTree.SubElement(
                image,
                "box",
                top=f"{y0:.3f}",
                left=f"{x0:.3f}",
                width=f"{x1 - x0:.3f}",
                height=f"{y1 - y0:.3f}",
            )
            for index, (x, y) in enumerate(instance.keypoints):
                ElementTree.SubElement(box, "part", name=f"{index:02d}", x=f"{x:.3f}", y=f"{y:.3f}")
    ElementTree.indent(root)
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


# --------------------------------------------------------------------------------------- COCO keypoints

COCO_KEYPOINT_NAMES = tuple(f"p{index}" for index in range(NUM_KEYPOINTS))


def to_coco(dataset: KeypointDataset) -> dict[str, Any]:
    """COCO keypoints document; split and provenance ride along as ``facet_split``/``facet_provenance``."""
    images, annotations = [], []
    for image_id, record in enumerate(dataset.images, start=1):
        images.append(
            {
                "id": image_id,
                "file_name": record.path,
                "width": record.width,
                "height": record.height,
                "facet_split": record.split,
            }
        )
        for instance in record.instances:
            x0, y0, x1, y1 = instance.box
            flat = []
            for (x, y), visible in zip(instance.keypoints, instance.visibility, strict=True):
                flat += [float(x), float(y), int(visible)]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                    "num_keypoints": int((instance.visibility > 0).sum()),
                    "keypoints": flat,
                    "score": instance.provenance.confidence,
                    "facet_provenance": instance.provenance.as_dict(),
                }
            )
    return {
        "info": {"description": "Facet 68-point face landmarks (iBUG-300W order)"},
        "images": images,
        "annotations": annotations,
        "categories": [
            {
                "id": 1,
                "name": FACE_CLASS,
                "supercategory": FACE_CLASS,
                "keypoints": list(COCO_KEYPOINT_NAMES),
                "skeleton": [],
                "facet_flip_idx": list(IBUG68_FLIP_IDX),
            }
        ],
        "facet_image_root": dataset.image_root,
    }


def from_coco(document: dict[str, Any] | str | Path) -> KeypointDataset:
    """A dataset from a COCO keypoints document (or its JSON file); annotations must have 68 points."""
    if not isinstance(document, dict):
        try:
            document = json.loads(Path(document).read_text())
        except json.JSONDecodeError as error:
            raise DatasetFormatError(f"{document}: invalid JSON ({error}).") from error
    try:
        by_image: dict[int, list[Instance]] = {image["id"]: [] for image in document["images"]}
        for annotation in document.get("annotations", []):
            values = np.asarray(annotation["keypoints"], dtype=np.float64)
            if values.size != 3 * NUM_KEYPOINTS:
                raise DatasetFormatError(
                    f"COCO annotation {annotation.get('id')} has {values.size // 3} keypoints, expected 68."
                )
            triples = values.reshape(NUM_KEYPOINTS, 3)
            x, y, width, height = annotation["bbox"]
            provenance = annotation.get("facet_provenance")
            if provenance is None and annotation.get("score") is not None:
                provenance = {"source": "coco@import", "confidence": annotation["score"]}
            by_image[annotation["image_id"]].append(
                Instance(
                    box=(x, y, x + width, y + height),
                    keypoints=triples[:, :2],
                    visibility=triples[:, 2].astype(np.int64),
                    provenance=Provenance.from_dict(provenance),
                )
            )
        records = tuple(
            ImageRecord(
                path=image["file_name"],
                width=int(image["width"]),
                height=int(image["height"]),
                split=image.get("facet_split", "train"),
                instances=tuple(by_image[image["id"]]),
            )
            for image in document["images"]
        )
    except KeyError as error:
        raise DatasetFormatError(f"COCO document lacks the field {error}.") from error
    return KeypointDataset(records, document.get("facet_image_root"))


# -------------------------------------------------------------------------------------------- YOLO-pose


def yolo_image_name(index: int, record: ImageRecord) -> str:
    """Unique, filesystem-safe file name of an image inside a YOLO export."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(record.path).stem)[:60]
    return f"{index:06d}_{stem}{Path(record.path).suffix.lower() or '.jpg'}"


def yolo_label_lines(record: ImageRecord) -> list[str]:
    """``class cx cy w h x1 y1 v1 … x68 y68 v68`` lines, all coordinates normalised to ``[0, 1]``."""
    lines = []
    for instance in record.instances:
        x0, y0, x1, y1 = instance.box
        x0, x1 = max(0.0, x0), min(float(record.width), x1)
        y0, y1 = max(0.0, y0), min(float(record.height), y1)
        values = [(x0 + x1) / 2 / record.width, (y0 + y1) / 2 / record.height]
        values += [(x1 - x0) / record.width, (y1 - y0) / record.height]
        for (x, y), visible in zip(instance.keypoints, instance.visibility, strict=True):
            inside = 0 <= x < record.width and 0 <= y < record.height
            flag = int(visible) if inside else 0  # points outside the frame are "not labelled" for YOLO
            values += [min(max(x / record.width, 0.0), 1.0), min(max(y / record.height, 0.0), 1.0), flag]
        lines.append(
            "0 "
            + " ".join(
                f"{value:.6f}" if not float(value).is_integer() else str(int(value)) for value in values
            )
        )
    return lines


def export_yolo_pose(
    dataset: KeypointDataset,
    directory: str | Path,
    include_unlabelled: bool = False,
    kpt_oks_sigma: float | None = None,
) -> Path:
    """Write a YOLO-pose dataset and return its ``data.yaml``.

    Images are symbolic links (never copies of research data) under ``images/<split>/``, labels under
    ``labels/<split>/``. Training images without any instance are left out unless ``include_unlabelled``:
    YOLO treats them as face-free negatives, which is wrong for images nobody has labelled yet.
    ``kpt_oks_sigma`` writes one OKS σ for all 68 points (``kpt_oks_sigmas``, used by Ultralytics' pose
    loss and pose AP); without it Ultralytics uses 1/68 per point.
    """
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} is not empty; YOLO exports are written once.")
    lists: dict[str, list[str]] = {split: [] for split in SPLITS}
    for index, record in enumerate(dataset.images):
        if not record.instances and not include_unlabelled and record.split == "train":
            continue
        source = dataset.resolve(record).resolve()
        if not source.is_file():
            raise DatasetFormatError(f"Image {source} does not exist.")
        name = yolo_image_name(index, record)
        image_dir = directory / "images" / record.split
        label_dir = directory / "labels" / record.split
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        os.symlink(source, image_dir / name)
        (label_dir / Path(name).with_suffix(".txt")).write_text("\n".join(yolo_label_lines(record)) + "\n")
        lists[record.split].append(str(image_dir / name))
    for split, paths in lists.items():
        if not paths:
            raise DatasetFormatError(f"The {split} split has no labelled image; YOLO needs both splits.")
        (directory / f"{split}.txt").write_text("\n".join(paths) + "\n")
    data_yaml = directory / "data.yaml"
    data_yaml.write_text(
        "# Facet 68-point face landmarks (iBUG-300W order)\n"
        f"path: {directory.resolve()}\n"
        "train: train.txt\n"
        "val: val.txt\n"
        f"kpt_shape: [{NUM_KEYPOINTS}, 3]\n"
        f"flip_idx: [{', '.join(str(index) for index in IBUG68_FLIP_IDX)}]\n"
        f"names:\n  0: {FACE_CLASS}\n"
    )
    if kpt_oks_sigma is not None:
        if kpt_oks_sigma <= 0:
            raise ValueError(f"kpt_oks_sigma must be positive, got {kpt_oks_sigma}.")
        with data_yaml.open("a") as handle:
            handle.write(f"kpt_oks_sigmas: [{', '.join([repr(float(kpt_oks_sigma))] * NUM_KEYPOINTS)}]\n")
    return data_yaml


def read_yolo_pose(data_yaml: str | Path) -> KeypointDataset:
    """Read back a YOLO-pose export (image sizes from the image headers; provenance becomes human)."""
    data_yaml = Path(data_yaml)
    settings: dict[str, str] = {}
    for line in data_yaml.read_text().splitlines():
        if ":" in line and not line.startswith((" ", "#")):
            key, value = line.split(":", 1)
            settings[key.strip()] = value.strip()
    if settings.get("kpt_shape", "").replace(" ", "") != f"[{NUM_KEYPOINTS},3]":
        raise DatasetFormatError(f"{data_yaml}: kpt_shape must be [{NUM_KEYPOINTS}, 3].")
    base = Path(settings.get("path", str(data_yaml.parent)))
    records = []
    for split in SPLITS:
        list_file = base / settings.get(split, f"{split}.txt")
        for image_path in filter(None, list_file.read_text().splitlines()):
            width, height = image_size(image_path)
            label_path = Path(image_path.replace(f"/images/{split}/", f"/labels/{split}/")).with_suffix(
                ".txt"
            )
            instances = []
            for line_number, line in enumerate(label_path.read_text().splitlines(), start=1):
                values = np.asarray(line.split(), dtype=np.float64)
                if values.size != 5 + 3 * NUM_KEYPOINTS:
                    raise DatasetFormatError(
                        f"{label_path}:{line_number}: expected {5 + 3 * NUM_KEYPOINTS} values."
                    )
                cx, cy, w, h = values[1:5] * (width, height, width, height)
                triples = values[5:].reshape(NUM_KEYPOINTS, 3)
                instances.append(
                    Instance(
                        box=(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2),
                        keypoints=triples[:, :2] * (width, height),
                        visibility=triples[:, 2].astype(np.int64),
                    )
                )
            records.append(
                ImageRecord(str(Path(image_path).resolve()), width, height, split, tuple(instances))
            )
    return KeypointDataset(tuple(records))


def finite_or_none(value: float) -> float | None:
    """``value`` rounded, or ``None`` when it is NaN/inf (JSON has no NaN)."""
    return round(float(value), 6) if math.isfinite(value) else None
