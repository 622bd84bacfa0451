"""Review of model labels: queue order, accepting with corrections, rejecting, new versions."""

import numpy as np
import pytest

from ml.landmarks.formats import ImageRecord, Instance, KeypointDataset, Provenance
from ml.landmarks.keypoint_datasets import DatasetStore
from ml.landmarks.review import accept_instance, reject_instance, review_queue


def _instance(x: float, source: str = "human", confidence=None) -> Instance:
    points = np.column_stack([np.linspace(x, x + 40, 68), np.linspace(10, 50, 68)])
    return Instance.from_points(points, Provenance(source, confidence))


@pytest.fixture
def dataset() -> KeypointDataset:
    return KeypointDataset(
        (
            ImageRecord(
                "a.jpg", 200, 100, "train", (_instance(0), _instance(100, "yolo-pose68@c-iter0", 0.93))
            ),
            ImageRecord("b.jpg", 200, 100, "train", (_instance(0, "yolo-pose68@c-iter1", 0.71),)),
            ImageRecord("c.jpg", 200, 100, "train", (_instance(0, "dlib-68@19", None),)),
            ImageRecord("d.jpg", 200, 100, "val", (_instance(0, "yolo-pose68@c-iter1", 0.2),)),
        )
    )


def test_queue_puts_the_least_confident_model_labels_first(dataset):
    queue = review_queue(dataset)
    assert [(item.image_path, item.confidence) for item in queue] == [
        ("c.jpg", None),
        ("b.jpg", 0.71),
        ("a.jpg", 0.93),
    ]
    assert queue[2].instance_index == 1
    assert [item.image_path for item in review_queue(dataset, split=None)][1] == "d.jpg"


def test_accepting_a_corrected_instance_makes_it_a_human_label(dataset, tmp_path):
    moved = dataset.images[1].instances[0].keypoints.copy()
    moved[30] += (4.0, -2.0)
    reviewed = accept_instance(dataset, "b.jpg", 0, author="dr.lee", keypoints=moved)
    label = reviewed.images[1].instances[0]
    assert label.provenance.is_human and label.provenance.author == "dr.lee" and label.provenance.created_at
    assert np.allclose(label.keypoints[30], dataset.images[1].instances[0].keypoints[30] + (4.0, -2.0))
    assert dataset.images[1].instances[0].provenance.source == "yolo-pose68@c-iter1", "input left unchanged"
    assert [item.image_path for item in review_queue(reviewed)] == ["c.jpg", "a.jpg"]
    store = DatasetStore(tmp_path)
    store.write(dataset, 0)
    store.write(reviewed, 1, parent=0, note="review by dr.lee")
    assert store.read(1).images[1].instances[0].provenance.author == "dr.lee"
    assert store.manifest(1)["counts"]["by_source"]["human"] == 2


def test_rejecting_removes_only_that_instance(dataset):
    reviewed = reject_instance(dataset, "a.jpg", 1)
    assert len(reviewed.images[0].instances) == 1 and reviewed.images[0].instances[0].provenance.is_human


def test_review_errors_are_clear(dataset):
    with pytest.raises(KeyError, match="not in the dataset"):
        accept_instance(dataset, "zz.jpg", 0, author="x")
    with pytest.raises(IndexError, match="instance"):
        reject_instance(dataset, "b.jpg", 3)
    with pytest.raises(ValueError, match="reviewer"):
        accept_instance(dataset, "b.jpg", 0, author="")
