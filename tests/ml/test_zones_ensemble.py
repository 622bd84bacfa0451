"""Ensemble winner selection, combining sub-model outputs, the HRNetV2 network and training helpers."""

from pathlib import Path

import numpy as np
import pytest

from ml.zones.atlas import ZONE_ABBREVIATIONS, ZONE_INDEX
from ml.zones.ensemble import combine_set_predictions, select_winners
from ml.zones.train import confusion_iou, poly_lr, training_progress
from ml.zones.zone_sets import load_zone_sets


def _table(sets: list[list[str]], values: dict[tuple[str, str], float]) -> dict[str, dict[str, float]]:
    return {
        f"set{k}": {code: values.get((f"set{k}", code), 0.1) for code in zone_set}
        for k, zone_set in enumerate(sets, start=1)
    }


def test_winner_is_the_sub_model_with_the_highest_iou() -> None:
    sets = load_zone_sets()
    shared = [code for code in ZONE_ABBREVIATIONS if all(code in s for s in sets)]
    assert shared, "the stored sets share some zones"
    code = shared[0]
    table = _table(sets, {("set1", code): 0.40, ("set2", code): 0.72, ("set3", code): 0.55})
    winners = select_winners(table)
    assert winners[code] == "set2"
    assert list(winners) == list(ZONE_ABBREVIATIONS)
    rng = np.random.default_rng(0)
    random_table = {name: {zone: float(rng.uniform()) for zone in ious} for name, ious in table.items()}
    for zone, winner in select_winners(random_table).items():
        candidates = {name: ious[zone] for name, ious in random_table.items() if zone in ious}
        assert candidates[winner] == max(candidates.values())


def test_ties_go_to_the_first_sub_model_and_nan_loses() -> None:
    table = {
        "set1": {code: float("nan") for code in ZONE_ABBREVIATIONS},
        "set2": {code: 0.5 for code in ZONE_ABBREVIATIONS},
        "set3": {code: 0.5 for code in ZONE_ABBREVIATIONS},
    }
    assert set(select_winners(table).values()) == {"set2"}


def test_missing_or_unknown_zone_is_an_error() -> None:
    with pytest.raises(ValueError, match="No sub-model predicts"):
        select_winners({"set1": {"LTA": 0.5}})
    with pytest.raises(ValueError, match="Unknown zone"):
        select_winners({"set1": {"XXX": 0.5}})


def test_combine_reads_each_zone_from_its_winner() -> None:
    rest = [c for c in ZONE_ABBREVIATIONS if c not in ("LTA", "LPA", "LJA")]
    sets = [["LTA", "LPA"], ["LTA"], ["LJA", *rest]]
    labels = {
        "set1": np.array([[1, 2], [0, 0]], np.uint8),
        "set2": np.array([[0, 0], [1, 1]], np.uint8),
        "set3": np.array([[1, 1], [1, 0]], np.uint8),
    }
    winners = {code: "set3" for code in ZONE_ABBREVIATIONS}
    winners.update({"LTA": "set2", "LPA": "set1"})
    masks = combine_set_predictions(labels, sets, winners)
    assert masks.shape == (33, 2, 2)
    assert np.array_equal(masks[ZONE_INDEX["LTA"]], [[False, False], [True, True]])
    assert np.array_equal(masks[ZONE_INDEX["LPA"]], [[False, True], [False, False]])
    assert np.array_equal(masks[ZONE_INDEX["LJA"]], [[True, True], [True, False]])
    winners["LJA"] = "set1"
    with pytest.raises(ValueError, match="does not predict"):
        combine_set_predictions(labels, sets, winners)


def test_poly_learning_rate() -> None:
    assert poly_lr(0.02, 0, 100) == pytest.approx(0.02)
    assert poly_lr(0.02, 50, 100) == pytest.approx(0.02 * 0.5**0.9)
    assert poly_lr(0.02, 100, 100) == 0.0


def test_time_budget_drives_the_poly_schedule_when_it_binds_first() -> None:
    assert training_progress(10, 100, elapsed_s=0.0, budget_s=None) == pytest.approx(0.1)
    assert training_progress(10, 100, elapsed_s=30.0, budget_s=60.0) == pytest.approx(0.5)
    assert training_progress(90, 100, elapsed_s=30.0, budget_s=60.0) == pytest.approx(0.9)


def test_confusion_iou_ignores_255() -> None:
    predicted = np.array([0, 1, 1, 2, 2])
    target = np.array([0, 1, 2, 2, 255])
    intersection, union = confusion_iou(predicted, target, 3)
    assert intersection.tolist() == [1, 1, 1]
    assert union.tolist() == [1, 2, 2]


def _timm_or_skip() -> None:
    try:
        import timm  # noqa: F401
    except Exception as error:  # a broken torchvision raises RuntimeError, not ImportError
        pytest.skip(f"timm cannot be imported in this environment: {type(error).__name__}: {error}")


def test_network_forward_shapes_and_fp16_weights(tmp_path: Path) -> None:
    _timm_or_skip()
    import torch

    from ml.zones.model import build_network, load_weights, save_weights, zone_tasks

    tasks = zone_tasks(load_zone_sets())
    network = build_network(tasks)
    images = torch.randn(2, 3, 64, 64)
    network.train()
    outputs = network(images)
    for name, classes in tasks.items():
        assert outputs[name].shape == (2, classes, 64, 64)
        assert outputs[f"aux:{name}"].shape == (2, classes, 64, 64)
    network.eval()
    with torch.inference_mode():
        assert set(network(images[:1])) == set(tasks)
    path = tmp_path / "w.pt"
    save_weights(network, str(path), {"tasks": tasks})
    assert path.stat().st_size < 25 * 1024 * 1024
    state, metadata = load_weights(str(path))
    assert metadata["tasks"] == tasks
    build_network(tasks).load_state_dict(state)


def test_network_rejects_bad_tasks() -> None:
    _timm_or_skip()
    from ml.zones.model import build_network

    with pytest.raises(ValueError, match="at least 2 classes"):
        build_network({"set1": 1})


def test_training_smoke_run_writes_a_loadable_ensemble(tmp_path: Path) -> None:
    _timm_or_skip()
    from ml.zones.datasets import DatasetWriter
    from ml.zones.ensemble import ZoneEnsemble
    from ml.zones.landmark_model import render_face_parts, render_zone_masks
    from ml.zones.render import mean_shape
    from ml.zones.train import TrainConfig, train

    landmarks = mean_shape() * 0.4
    shape = (192, 160)
    masks = render_zone_masks(landmarks, shape)
    parts = render_face_parts(landmarks, shape)
    writer = DatasetWriter(tmp_path / "data", load_zone_sets(), validation_fraction=0.0)
    image = np.full((*shape, 3), 180, dtype=np.uint8)
    for name in ("a", "b"):
        writer.add(name, image, masks, parts)
    writer.close()
    for task in ("set1", "set2", "set3", "parts"):  # validate on the training images
        (tmp_path / "data" / f"{task}_validation.odgt").write_text(
            (tmp_path / "data" / f"{task}_training.odgt").read_text()
        )
    summary = train(
        tmp_path / "data",
        tmp_path / "model",
        TrainConfig(iterations=1, batch_size=1, input_size=64),
        log=lambda _: None,
    )
    assert set(summary["winners"]) == set(ZONE_ABBREVIATIONS)
    assert summary["training"]["config"]["base_lr"] == 0.02
    prediction = ZoneEnsemble(tmp_path / "model").predict(image)
    assert prediction.masks.shape == (33, *shape) and prediction.parts.shape == shape
