"""Three sets of mutually non-overlapping zones, one per segmentation sub-model.

Tuazon & Mortezaei (Skin Res Technol 2024) train three sub-models because a pixel can belong to
several zones while a semantic-segmentation network predicts one class per pixel. We build the overlap
graph (an edge joins two zones that share a pixel on any label map), colour it with three colours
(DSatur greedy order, then exhaustive backtracking if the greedy order needs more), and then add every
zone to each further set where it overlaps none of that set's members, so a zone can be learnt by
several sub-models and the ensemble can pick the best one.

The fixed sets used by the shipped models are in ``zone_sets.json`` beside this module, computed by
``python -m ml zones compute-sets`` from landmark-rendered masks of the development faces.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ml.zones.atlas import N_ZONES, ZONE_ABBREVIATIONS, ZONE_INDEX

N_SETS = 3
ZONE_SETS_PATH = Path(__file__).with_name("zone_sets.json")


class ZoneSetError(ValueError):
    """The zone sets are invalid or cannot be built from the given masks."""


def overlap_graph(mask_stacks: Iterable[np.ndarray]) -> np.ndarray:
    """Symmetric ``(33, 33)`` count of images in which two zones share at least one pixel."""
    counts = np.zeros((N_ZONES, N_ZONES), dtype=np.int64)
    for masks in mask_stacks:
        if masks.ndim != 3 or masks.shape[0] != N_ZONES:
            raise ZoneSetError(f"Expected zone masks of shape (33, H, W), got {masks.shape}.")
        boxes = [_bounding_box(mask) for mask in masks]
        for first in range(N_ZONES):
            for second in range(first + 1, N_ZONES):
                if _zones_share_pixels(masks, first, second, boxes):
                    counts[first, second] += 1
                    counts[second, first] += 1
    np.fill_diagonal(counts, 0)
    return counts


def _bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    y = np.nonzero(rows)[0]
    x = np.nonzero(cols)[0]
    return int(y[0]), int(y[-1]) + 1, int(x[0]), int(x[-1]) + 1


def _zones_share_pixels(
    masks: np.ndarray, first: int, second: int, boxes: list[tuple[int, int, int, int] | None]
) -> bool:
    """Whether two masks share a pixel, testing only where their bounding boxes intersect."""
    box_a, box_b = boxes[first], boxes[second]
    if box_a is None or box_b is None:
        return False
    y0, y1 = max(box_a[0], box_b[0]), min(box_a[1], box_b[1])
    x0, x1 = max(box_a[2], box_b[2]), min(box_a[3], box_b[3])
    if y0 >= y1 or x0 >= x1:
        return False
    return bool(np.any(masks[first, y0:y1, x0:x1] & masks[second, y0:y1, x0:x1]))


def _dsatur(adjacent: np.ndarray) -> list[int]:
    count = len(adjacent)
    colours = [-1] * count
    degree = adjacent.sum(axis=1)
    for _ in range(count):
        best, best_key = -1, (-1, -1, 0)
        for node in range(count):
            if colours[node] >= 0:
                continue
            saturation = len({colours[n] for n in np.nonzero(adjacent[node])[0] if colours[n] >= 0})
            key = (saturation, int(degree[node]), -node)
            if key > best_key:
                best, best_key = node, key
        used = {colours[n] for n in np.nonzero(adjacent[best])[0] if colours[n] >= 0}
        colours[best] = min(c for c in range(count) if c not in used)
    return colours


def _backtrack(adjacent: np.ndarray, n_colours: int) -> list[int] | None:
    count = len(adjacent)
    order = sorted(range(count), key=lambda node: -int(adjacent[node].sum()))
    colours = [-1] * count

    def assign(position: int) -> bool:
        if position == count:
            return True
        node = order[position]
        for colour in range(n_colours):
            if all(colours[n] != colour for n in np.nonzero(adjacent[node])[0]):
                colours[node] = colour
                if assign(position + 1):
                    return True
                colours[node] = -1
        return False

    return colours if assign(0) else None


def colour_zones(graph: np.ndarray, n_sets: int = N_SETS) -> list[list[str]]:
    """Zone sets from an overlap graph: a proper ``n_sets``-colouring, then each zone added to every set
    it does not overlap. Raises :class:`ZoneSetError` when no such colouring exists."""
    adjacent = np.asarray(graph) > 0
    colours = _dsatur(adjacent)
    if max(colours) >= n_sets:
        found = _backtrack(adjacent, n_sets)
        if found is None:
            raise ZoneSetError(f"The zone overlap graph cannot be split into {n_sets} non-overlapping sets.")
        colours = found
    members = [[node for node in range(N_ZONES) if colours[node] == c] for c in range(n_sets)]
    for node in range(N_ZONES):
        for colour in range(n_sets):
            if node not in members[colour] and not any(adjacent[node, other] for other in members[colour]):
                members[colour].append(node)
    return [[ZONE_ABBREVIATIONS[node] for node in sorted(nodes)] for nodes in members]


def validate_sets(sets: list[list[str]]) -> None:
    """Raise :class:`ZoneSetError` unless there are three sets of known zones covering all 33."""
    if len(sets) != N_SETS:
        raise ZoneSetError(f"Expected {N_SETS} zone sets, got {len(sets)}.")
    unknown = sorted({code for zone_set in sets for code in zone_set} - set(ZONE_ABBREVIATIONS))
    if unknown:
        raise ZoneSetError(f"Unknown zones in the sets: {', '.join(unknown)}.")
    missing = [code for code in ZONE_ABBREVIATIONS if not any(code in zone_set for zone_set in sets)]
    if missing:
        raise ZoneSetError(f"Zones in no set: {', '.join(missing)}.")


def load_zone_sets(path: Path = ZONE_SETS_PATH) -> list[list[str]]:
    """The stored zone sets (lists of abbreviations in atlas order)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ZoneSetError(
            f"Zone sets file {path} is missing; run 'python -m ml zones compute-sets'."
        ) from error
    sets = data["sets"]
    validate_sets(sets)
    return sets


def save_zone_sets(
    sets: list[list[str]], graph: np.ndarray, n_images: int, path: Path = ZONE_SETS_PATH
) -> None:
    """Write the sets with the overlapping pairs they were computed from."""
    validate_sets(sets)
    pairs = [
        [ZONE_ABBREVIATIONS[a], ZONE_ABBREVIATIONS[b], int(graph[a, b])]
        for a in range(N_ZONES)
        for b in range(a + 1, N_ZONES)
        if graph[a, b] > 0
    ]
    payload = {"n_images": n_images, "sets": sets, "overlapping_pairs": pairs}
    path.write_text(json.dumps(payload, indent=1) + "\n")


def set_overlaps(masks: np.ndarray, zone_set: list[str]) -> list[tuple[str, str, int]]:
    """Pairs of zones of one set that share pixels on ``masks`` ``(33, H, W)``, with the pixel count."""
    found = []
    indices = [ZONE_INDEX[code] for code in zone_set]
    for position, first in enumerate(indices):
        for second in indices[position + 1 :]:
            shared = int(np.count_nonzero(masks[first] & masks[second]))
            if shared:
                found.append((ZONE_ABBREVIATIONS[first], ZONE_ABBREVIATIONS[second], shared))
    return found


def label_map(masks: np.ndarray, zone_set: list[str]) -> np.ndarray:
    """``(H, W) uint8`` label map of one set: 0 background, ``k`` = the set's ``k``-th zone (1-based).

    Raises :class:`ZoneSetError` if two zones of the set overlap on these masks.
    """
    overlaps = set_overlaps(masks, zone_set)
    if overlaps:
        described = ", ".join(f"{a}/{b} ({n} px)" for a, b, n in overlaps[:5])
        raise ZoneSetError(f"Zones of one set overlap: {described}.")
    labels = np.zeros(masks.shape[1:], dtype=np.uint8)
    for position, code in enumerate(zone_set, start=1):
        labels[masks[ZONE_INDEX[code]]] = position
    return labels
