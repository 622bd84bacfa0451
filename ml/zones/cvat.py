"""Import human zone annotations exported from CVAT.

Two export formats are read; the label name must be the zone abbreviation (``LNF``, ``FUL``, ...),
matched case-insensitively; labels that are not zones are reported, not guessed.

* **CVAT for images 1.1** (``annotations.xml``): ``<image name width height>`` elements holding
  ``<polygon label points="x1,y1;x2,y2;...">`` (and ``<box>``) shapes. Overlapping polygons stay
  overlapping, as zones do.
* **Segmentation mask 1.1**: ``labelmap.txt`` (``name:r,g,b:parts:actions`` lines) and
  ``SegmentationClass/<image>.png`` coloured by label. A colour mask holds one label per pixel, so
  overlapping zones need one export per zone set.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ml.zones.atlas import N_ZONES, ZONE_ABBREVIATIONS, ZONE_INDEX
from ml.zones.geometry import Polygon
from ml.zones.landmark_model import rasterize_shape


class CvatImportError(ValueError):
    """The CVAT export cannot be read; the message says what is wrong."""


@dataclass
class ZoneAnnotation:
    """Human zone masks of one image: ``masks (33, H, W)`` and which zones were annotated."""

    image_name: str
    masks: np.ndarray
    annotated: np.ndarray  # (33,) bool: zones this annotation defines (others fall back to landmarks)
    unknown_labels: list[str] = field(default_factory=list)


def _zone_index(label: str) -> int | None:
    return ZONE_INDEX.get(label.strip().upper())


def _parse_points(text: str, image_name: str) -> np.ndarray:
    try:
        points = np.array(
            [[float(v) for v in pair.split(",")] for pair in text.strip().split(";") if pair],
            dtype=np.float64,
        )
    except ValueError as error:
        raise CvatImportError(
            f"Image '{image_name}': polygon points '{text[:60]}' are not 'x,y;x,y;...'."
        ) from error
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
        raise CvatImportError(f"Image '{image_name}': a polygon needs at least 3 'x,y' points.")
    return points


def read_cvat_images_xml(path: str | Path) -> dict[str, ZoneAnnotation]:
    """Zone masks per image name from a "CVAT for images 1.1" XML export file (polygons and boxes)."""
    try:
        content = Path(path).read_bytes()
    except OSError as error:
        raise CvatImportError(f"Cannot read CVAT XML '{path}': {error}.") from error
    return parse_cvat_images_xml(content, str(path))


def parse_cvat_images_xml(content: bytes, path: str = "the XML") -> dict[str, ZoneAnnotation]:
    """:func:`read_cvat_images_xml` of the export's bytes; ``path`` names it in messages."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as error:
        raise CvatImportError(f"Cannot read CVAT XML '{path}': {error}.") from error
    images = root.findall("image")
    if root.tag != "annotations" or not images:
        raise CvatImportError(f"'{path}' is not a 'CVAT for images 1.1' export (no <annotations>/<image>).")
    result: dict[str, ZoneAnnotation] = {}
    for element in images:
        name = element.get("name", "")
        try:
            width, height = int(element.get("width", "")), int(element.get("height", ""))
        except ValueError as error:
            raise CvatImportError(f"Image '{name}' in '{path}' lacks a valid width/height.") from error
        masks = np.zeros((N_ZONES, height, width), dtype=bool)
        annotated = np.zeros(N_ZONES, dtype=bool)
        unknown: list[str] = []
        for shape in element:
            label = shape.get("label", "")
            index = _zone_index(label)
            if index is None:
                unknown.append(label)
                continue
            if shape.tag == "polygon":
                polygon = Polygon(_parse_points(shape.get("points", ""), name))
            elif shape.tag == "box":
                x0, y0, x1, y1 = (float(shape.get(key, "nan")) for key in ("xtl", "ytl", "xbr", "ybr"))
                polygon = Polygon(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
            else:
                unknown.append(f"{label} ({shape.tag} shapes are not supported)")
                continue
            masks[index] |= rasterize_shape(polygon, height, width)
            annotated[index] = True
        result[Path(name).stem] = ZoneAnnotation(name, masks, annotated, sorted(set(unknown)))
    return result


def read_labelmap(path: str | Path) -> dict[str, tuple[int, int, int]]:
    """``labelmap.txt`` of a Segmentation mask 1.1 export: label name → RGB colour."""
    return parse_labelmap(Path(path).read_text(), str(path))


def parse_labelmap(text: str, path: str = "labelmap.txt") -> dict[str, tuple[int, int, int]]:
    """:func:`read_labelmap` of the file's text; ``path`` names it in messages."""
    colours: dict[str, tuple[int, int, int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        try:
            rgb = tuple(int(v) for v in parts[1].split(","))
        except (IndexError, ValueError) as error:
            raise CvatImportError(
                f"{path}:{number}: expected 'label:r,g,b:parts:actions', got '{line}'."
            ) from error
        if len(rgb) != 3:
            raise CvatImportError(f"{path}:{number}: colour '{parts[1]}' is not r,g,b.")
        colours[parts[0].strip()] = rgb  # type: ignore[assignment]
    return colours


def read_cvat_segmentation_masks(export_dir: str | Path) -> dict[str, ZoneAnnotation]:
    """Zone masks per image stem from a "Segmentation mask 1.1" export folder."""
    export_dir = Path(export_dir)
    labelmap_path = export_dir / "labelmap.txt"
    class_dir = export_dir / "SegmentationClass"
    if not labelmap_path.is_file() or not class_dir.is_dir():
        raise CvatImportError(
            f"'{export_dir}' is not a Segmentation mask 1.1 export "
            "(needs labelmap.txt and SegmentationClass/)."
        )
    colours = read_labelmap(labelmap_path)
    return {
        png.stem: parse_segmentation_mask(png.read_bytes(), colours, png.name)
        for png in sorted(class_dir.glob("*.png"))
    }


def parse_segmentation_mask(
    content: bytes, colours: dict[str, tuple[int, int, int]], image_name: str
) -> ZoneAnnotation:
    """The zones of one ``SegmentationClass`` PNG (its bytes), coloured as ``colours`` say."""
    try:
        pixels = np.asarray(Image.open(io.BytesIO(content)).convert("RGB"))
    except OSError as error:
        raise CvatImportError(f"{image_name}: not a readable PNG ({error}).") from error
    masks = np.zeros((N_ZONES, *pixels.shape[:2]), dtype=bool)
    annotated = np.zeros(N_ZONES, dtype=bool)
    unknown = []
    for label, rgb in colours.items():
        if label.lower() == "background":
            continue
        index = _zone_index(label)
        present = np.all(pixels == np.array(rgb, dtype=np.uint8), axis=2)
        if index is None:
            if present.any():
                unknown.append(label)
            continue
        masks[index] = present
        annotated[index] = bool(present.any())
    return ZoneAnnotation(image_name, masks, annotated, unknown)


def merge_with_landmark_masks(landmark_masks: np.ndarray, annotation: ZoneAnnotation | None) -> np.ndarray:
    """Zone masks where human-annotated zones replace the landmark model's masks (human takes precedence)."""
    if annotation is None:
        return landmark_masks
    if annotation.masks.shape != landmark_masks.shape:
        raise CvatImportError(
            f"Annotation '{annotation.image_name}' is {annotation.masks.shape[1:]} but the image is "
            f"{landmark_masks.shape[1:]}; export the annotations at the original image size."
        )
    merged = landmark_masks.copy()
    merged[annotation.annotated] = annotation.masks[annotation.annotated]
    return merged


def annotated_zone_names(annotation: ZoneAnnotation) -> list[str]:
    """Abbreviations of the zones a human annotated in this image."""
    return [ZONE_ABBREVIATIONS[i] for i in np.nonzero(annotation.annotated)[0]]
