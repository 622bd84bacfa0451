"""Three non-overlapping zone sets: colouring, the stored sets and non-overlap on training masks."""

import csv
from pathlib import Path

import numpy as np
import pytest

from ml.zones.atlas import ZONE_ABBREVIATIONS, ZONE_INDEX
from ml.zones.landmark_model import render_zone_masks
from ml.zones.render import mean_shape
from ml.zones.zone_sets import (
    ZoneSetError,
    colour_zones,
    label_map,
    load_zone_sets,
    overlap_graph,
    set_overlaps,
    validate_sets,
)


def synthetic_faces(count: int, seed: int = 0) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """Mean shape under random roll, scale, shift and 2 px landmark noise."""
    rng = np.random.default_rng(seed)
    faces = []
    for _ in range(count):
        angle = np.deg2rad(rng.uniform(-12, 12))
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        scale = rng.uniform(0.7, 1.3)
        points = (mean_shape() - [200, 260]) @ rotation.T * scale + [200, 260] + rng.normal(0, 2.0, (68, 2))
        faces.append((points, (480, 400)))
    return faces


def test_stored_sets_cover_all_zones() -> None:
    sets = load_zone_sets()
    validate_sets(sets)
    assert len(sets) == 3
    assert {code for zone_set in sets for code in zone_set} == set(ZONE_ABBREVIATIONS)
    for zone_set in sets:
        assert zone_set == sorted(zone_set, key=ZONE_INDEX.__getitem__)


def test_stored_sets_do_not_overlap_on_synthetic_faces() -> None:
    sets = load_zone_sets()
    for landmarks, shape in synthetic_faces(6):
        masks = render_zone_masks(landmarks, shape)
        for zone_set in sets:
            assert set_overlaps(masks, zone_set) == []
            labels = label_map(masks, zone_set)
            assert labels.max() <= len(zone_set)


def test_recomputed_sets_from_synthetic_graph_are_non_overlapping() -> None:
    stacks = [render_zone_masks(points, shape) for points, shape in synthetic_faces(4, seed=1)]
    graph = overlap_graph(stacks)
    assert graph[ZONE_INDEX["LNF"], ZONE_INDEX["LAA"]] == 4
    sets = colour_zones(graph)
    for zone_set in sets:
        for masks in stacks:
            assert set_overlaps(masks, zone_set) == []


def _graph(edges: list[tuple[int, int]]) -> np.ndarray:
    graph = np.zeros((33, 33), dtype=int)
    for a, b in edges:
        graph[a, b] = graph[b, a] = 1
    return graph


def test_colouring_separates_a_triangle_and_adds_free_zones_everywhere() -> None:
    sets = colour_zones(_graph([(0, 1), (1, 2), (0, 2)]))
    owners = [{k for k, s in enumerate(sets) if ZONE_ABBREVIATIONS[z] in s} for z in (0, 1, 2)]
    assert all(len(o) == 1 for o in owners) and len(set.union(*owners)) == 3
    assert all(ZONE_ABBREVIATIONS[10] in zone_set for zone_set in sets)


def test_four_mutually_overlapping_zones_cannot_be_split_in_three() -> None:
    with pytest.raises(ZoneSetError, match="cannot be split"):
        colour_zones(_graph([(a, b) for a in range(4) for b in range(a + 1, 4)]))


def test_label_map_refuses_overlapping_zones() -> None:
    masks = np.zeros((33, 8, 8), dtype=bool)
    masks[0, :4] = True
    masks[1, 3:] = True
    with pytest.raises(ZoneSetError, match="LTA/LPA"):
        label_map(masks, ["LTA", "LPA"])


@pytest.fixture(scope="module")
def real_landmark_masks(data_dir: Path) -> list[np.ndarray]:
    """Landmark-rendered masks of real training faces (FASSEG frontal and MEBeauty originals)."""
    from ml.core.imageio import load_image
    from ml.core.landmarks import detect_faces_with_landmarks

    paths = sorted((data_dir / "fasseg" / "frontal" / "train" / "images").glob("*.jpg"))[:4]
    with (data_dir / "mebeauty" / "images.csv").open() as handle:
        originals = [row["original"] for row in csv.DictReader(handle) if row["original"]]
    paths += [data_dir / "mebeauty" / name for name in originals[:4]]
    stacks = []
    for path in paths:
        image = load_image(path)
        faces = detect_faces_with_landmarks(image)
        if faces:
            stacks.append(render_zone_masks(max(faces, key=lambda f: f.score).landmarks, image.shape))
    assert len(stacks) >= 6
    return stacks


def test_stored_sets_do_not_overlap_on_real_training_faces(real_landmark_masks: list[np.ndarray]) -> None:
    sets = load_zone_sets()
    for masks in real_landmark_masks:
        for zone_set in sets:
            assert set_overlaps(masks, zone_set) == []
