"""Review of model-made landmark labels: a queue ordered by confidence and corrections that become human.

The web review page lists :func:`review_queue` (least confident first, so effort goes where the model is
least sure), and records a reviewer's decision with :func:`accept_instance` (optionally with moved
points) or :func:`reject_instance`; the result is written as the next immutable dataset version.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from ml.landmarks.formats import HUMAN, Instance, KeypointDataset, Provenance


@dataclass(frozen=True)
class ReviewItem:
    """One model-made instance awaiting review: where it is and how sure the model was."""

    image_path: str
    instance_index: int
    source: str
    confidence: float | None


def review_queue(dataset: KeypointDataset, split: str | None = "train") -> list[ReviewItem]:
    """Every non-human instance, lowest confidence first (unknown confidence first of all)."""
    items = [
        ReviewItem(record.path, index, instance.provenance.source, instance.provenance.confidence)
        for record in dataset.images
        if split is None or record.split == split
        for index, instance in enumerate(record.instances)
        if instance.provenance.source != HUMAN
    ]
    return sorted(
        items, key=lambda item: (item.confidence is not None, item.confidence or 0.0, item.image_path)
    )


def _replace_instance(
    dataset: KeypointDataset, image_path: str, instance_index: int, replacement: Instance | None
) -> KeypointDataset:
    records = []
    found = False
    for record in dataset.images:
        if record.path == image_path:
            if not 0 <= instance_index < len(record.instances):
                raise IndexError(
                    f"{image_path} has {len(record.instances)} instance(s), not #{instance_index}."
                )
            instances = list(record.instances)
            if replacement is None:
                del instances[instance_index]
            else:
                instances[instance_index] = replacement
            record = record.with_instances(instances)
            found = True
        records.append(record)
    if not found:
        raise KeyError(f"Image {image_path} is not in the dataset.")
    return KeypointDataset(tuple(records), dataset.image_root)


def accept_instance(
    dataset: KeypointDataset,
    image_path: str,
    instance_index: int,
    author: str,
    keypoints: np.ndarray | None = None,
    box: tuple[float, float, float, float] | None = None,
) -> KeypointDataset:
    """The dataset with one instance accepted by ``author``, with corrected ``keypoints``/``box`` if given.

    The accepted instance becomes a human label (``author``, UTC time); its visibility is kept.
    """
    if not author:
        raise ValueError("A review needs the reviewer's name.")
    record = next((item for item in dataset.images if item.path == image_path), None)
    if record is None:
        raise KeyError(f"Image {image_path} is not in the dataset.")
    if not 0 <= instance_index < len(record.instances):
        raise IndexError(f"{image_path} has {len(record.instances)} instance(s), not #{instance_index}.")
    reviewed = record.instances[instance_index]
    provenance = Provenance(
        HUMAN, author=author, created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )
    accepted = Instance(
        box=box if box is not None else reviewed.box,
        keypoints=reviewed.keypoints if keypoints is None else np.asarray(keypoints, dtype=np.float64),
        visibility=reviewed.visibility,
        provenance=provenance,
    )
    return _replace_instance(dataset, image_path, instance_index, accepted)


def reject_instance(dataset: KeypointDataset, image_path: str, instance_index: int) -> KeypointDataset:
    """The dataset without one (wrong) instance."""
    return _replace_instance(dataset, image_path, instance_index, None)
