"""Campaign rules without training: the merge rule, the fixed validation split, run naming, reports."""

import numpy as np
import pytest

from ml.core.metrics import box_iou
from ml.landmarks.campaign import (
    CampaignConfig,
    IterationReport,
    SplitViolationError,
    _stop_hook,
    assign_split,
    campaign_markdown,
    images_to_predict,
    keypoint_errors,
    merge_instances,
    merge_predictions,
)
from ml.landmarks.formats import ImageRecord, Instance, KeypointDataset, Provenance
from ml.progress import Cancelled


def _instance(box, confidence=None, source="human") -> Instance:
    x0, y0, x1, y1 = box
    grid = np.stack(np.meshgrid(np.linspace(x0, x1, 17), np.linspace(y0, y1, 4)), -1).reshape(-1, 2)[:68]
    return Instance(box=box, keypoints=grid, provenance=Provenance(source, confidence))


def _predicted(box, confidence) -> Instance:
    return _instance(box, confidence, "yolo-pose68@test-iter0")


def _shifted_box(iou: float) -> tuple[float, float, float, float]:
    """A 10×10 box overlapping (0, 0, 10, 10) with exactly ``iou``: shift s gives (10-s)/(10+s)."""
    shift = 10 * (1 - iou) / (1 + iou)
    return (shift, 0.0, 10.0 + shift, 10.0)


ORIGIN = (0.0, 0.0, 10.0, 10.0)


@pytest.mark.parametrize("iou, added", [(0.0, True), (0.2, True), (0.3, True), (0.31, False), (0.9, False)])
def test_prediction_is_added_only_when_iou_is_at_most_0_3(iou, added):
    prediction = _predicted(_shifted_box(iou), 0.9)
    assert box_iou(prediction.box, ORIGIN) == pytest.approx(iou, abs=1e-9)
    merged = merge_instances([_instance(ORIGIN)], [prediction])
    assert (len(merged) == 2) is added
    assert merged[0].provenance.is_human


def test_exact_iou_of_0_3_is_added():
    prediction = Instance(box=(0.0, 0.0, 10.0, 10.0), keypoints=np.zeros((68, 2)))
    existing = _instance((0.0, 0.0, 10.0, 3.0))  # inside: IoU = 30 / 100 = 0.3 exactly
    assert box_iou(prediction.box, existing.box) == 0.3
    predicted = Instance(prediction.box, prediction.keypoints, provenance=Provenance("m@1", 0.8))
    assert len(merge_instances([existing], [predicted])) == 2


def test_prediction_must_clear_every_existing_label():
    existing = [_instance((100, 100, 110, 110)), _instance(ORIGIN)]
    merged = merge_instances(existing, [_predicted(_shifted_box(0.5), 0.95)])
    assert merged == existing


def test_originals_are_kept_even_when_they_overlap_each_other():
    existing = [_instance(ORIGIN), _instance(ORIGIN), _instance(_shifted_box(0.8))]
    merged = merge_instances(existing, [_predicted((50, 50, 60, 60), 0.99)])
    assert merged[:3] == existing and len(merged) == 4


def test_low_confidence_predictions_are_dropped_and_0_7_is_kept():
    merged = merge_instances([], [_predicted((0, 0, 5, 5), 0.69), _predicted((20, 20, 25, 25), 0.7)])
    assert [instance.provenance.confidence for instance in merged] == [0.7]


def test_overlapping_predictions_keep_only_the_most_confident():
    merged = merge_instances([], [_predicted(ORIGIN, 0.75), _predicted(_shifted_box(0.8), 0.9)])
    assert [instance.provenance.confidence for instance in merged] == [0.9]


def _dataset() -> KeypointDataset:
    return KeypointDataset(
        (
            ImageRecord("a.jpg", 100, 100, "train", (_instance(ORIGIN),)),
            ImageRecord("b.jpg", 100, 100, "val", (_instance(ORIGIN),)),
            ImageRecord("c.jpg", 100, 100, "train", ()),
        )
    )


def test_only_training_images_are_predicted_into():
    assert [record.path for record in images_to_predict(_dataset())] == ["a.jpg", "c.jpg"]


def test_pseudo_labels_for_validation_images_are_refused():
    with pytest.raises(SplitViolationError, match="validation"):
        merge_predictions(_dataset(), {"b.jpg": [_predicted((50, 50, 60, 60), 0.99)]})


def test_merge_predictions_adds_to_training_images_and_keeps_the_split():
    offered = {
        "a.jpg": [_predicted((50, 50, 60, 60), 0.99), _predicted(ORIGIN, 0.99)],
        "c.jpg": [_predicted(ORIGIN, 0.8)],
        "b.jpg": [],
    }
    merged, added = merge_predictions(_dataset(), offered)
    assert added == 2
    assert [record.split for record in merged.images] == ["train", "val", "train"]
    assert [len(record.instances) for record in merged.images] == [2, 1, 1]
    assert merged.images[1].as_dict() == _dataset().images[1].as_dict()
    assert merged.counts()["by_source"] == {"human": 2, "yolo-pose68@test-iter0": 2}


def test_split_is_fixed_by_image_and_seeded():
    paths = [f"img{index}.jpg" for index in range(50)]
    split = assign_split(paths, 0.3, seed=7)
    assert split == assign_split(list(reversed(paths)), 0.3, seed=7)
    assert sum(value == "val" for value in split.values()) == 15
    assert split != assign_split(paths, 0.3, seed=8)
    with pytest.raises(ValueError):
        assign_split(paths, 1.0, seed=0)


def test_runs_are_named_by_iteration_in_the_campaign_folder(tmp_path):
    config = CampaignConfig(name="study-3", root=tmp_path / "c")
    assert config.run_name(2) == "iter-2"
    assert config.runs_dir == (tmp_path / "c" / "runs").resolve()
    with pytest.raises(ValueError):
        CampaignConfig(name="a/b", root=tmp_path)


class _Trainer:
    epoch, epochs, tloss = 4, 10, {"pose_loss": 1.5}


def test_epoch_hook_reports_progress_and_raises_on_cancel():
    events = []
    _stop_hook(events.append, lambda: False, 1)(_Trainer())
    assert events == [
        {"phase": "train", "iteration": 1, "epoch": 5, "epochs": 10, "loss": {"pose_loss": 1.5}}
    ]
    with pytest.raises(Cancelled):
        _stop_hook(None, lambda: True, 1)(_Trainer())


def test_keypoint_errors_match_faces_by_box_and_count_misses():
    truth = KeypointDataset(
        (ImageRecord("a.jpg", 100, 100, "val", (_instance(ORIGIN), _instance((50, 50, 70, 70)))),)
    )
    guess = _instance(ORIGIN)
    moved = Instance(guess.box, guess.keypoints + [3.0, 4.0], provenance=Provenance("m@1", 0.9))
    errors = keypoint_errors(truth, [[moved]])
    assert errors["val_faces"] == 2 and errors["val_faces_matched"] == 1
    assert errors["keypoint_mean_error_px"] == pytest.approx(5.0)
    assert errors["keypoint_mse_px2"] == pytest.approx(25.0)
    assert errors["nme_outer_eye_corners"] == pytest.approx(
        5.0 / np.linalg.norm(guess.keypoints[36] - guess.keypoints[45])
    )


def test_markdown_report_lists_every_iteration():
    metrics = {
        key: 0.5
        for key in (
            "box_precision",
            "box_recall",
            "box_ap50",
            "pose_precision",
            "pose_recall",
            "pose_ap50",
            "pose_ap50_95",
        )
    }
    metrics.update(
        keypoint_mse_px2=12.0,
        keypoint_mean_error_px=3.0,
        nme_outer_eye_corners=0.05,
        val_faces=10,
        val_faces_matched=9,
    )
    rows = [
        IterationReport(k, f"v{k}", "yolov8n-pose.yaml", 5, _dataset().counts(), metrics, "w.pt", 3, 60.0)
        for k in range(3)
    ]
    from dataclasses import asdict

    text = campaign_markdown(
        {"campaign": "c", "command": "python -m ml x", "iterations": [asdict(r) for r in rows]}
    )
    assert all(f"| {k} | v{k} |" in text for k in range(3)) and "python -m ml x" in text and "9/10" in text


def test_the_iteration_with_the_lowest_validation_nme_is_chosen():
    from ml.landmarks.campaign import choose_iteration

    rows = [
        {"iteration": k, "metrics": {"nme_outer_eye_corners": nme}} for k, nme in enumerate([0.2, 0.1, 0.1])
    ]
    assert choose_iteration({"iterations": rows}) == 2
    rows[2]["metrics"]["nme_outer_eye_corners"] = None
    assert choose_iteration({"iterations": rows}) == 1


@pytest.mark.parametrize("extra, sigma", [([], 0.05), (["--kpt-oks-sigma", "0.1"], 0.1)])
def test_campaign_command_line_builds_its_config(tmp_path, extra, sigma) -> None:
    from ml.cli import build_parser
    from ml.landmarks.cli import _campaign_config

    arguments = ["landmarks", "campaign", "mebeauty", "--name", "c", "--root", str(tmp_path / "c")]
    arguments += ["--iterations", "2", "--epochs-first", "3", "--imgsz", "128", "--from-scratch", *extra]
    config = _campaign_config(build_parser().parse_args(arguments))
    assert (config.name, config.iterations, config.epochs_first, config.imgsz) == ("c", 2, 3, 128)
    assert config.fine_tune is False and config.kpt_oks_sigma == sigma


def test_an_interrupted_campaign_resumes_after_its_last_finished_iteration(tmp_path, monkeypatch):
    """Training is replaced by a stand-in; the campaign's bookkeeping (versions, report, resume) is real."""
    import ultralytics
    from PIL import Image

    import ml.landmarks.campaign as campaign

    records = []
    for index, split in enumerate(["train", "train", "train", "val"]):
        path = tmp_path / "images" / f"{index}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (64, 64)).save(path)
        instances = (_instance((10.0, 10.0, 50.0, 50.0)),) if index != 2 else ()
        records.append(ImageRecord(str(path), 64, 64, split, instances))
    initial = KeypointDataset(tuple(records))
    trained: list[int] = []

    def fake_train(config, data_yaml, iteration, start, epochs, progress=None, cancel=None, validation=None):
        if iteration == 1 and not trained.count(1):
            trained.append(1)
            raise KeyboardInterrupt  # the job was stopped during iteration 1
        trained.append(iteration)
        weights = tmp_path / f"iter{iteration}.pt"
        weights.write_text("weights")
        return weights, {}

    def fake_predict(model, paths, version, imgsz, conf, device="cpu"):
        return [[_predicted((12.0, 12.0, 48.0, 48.0), 0.9)] if "2.png" in str(p) else [] for p in paths]

    monkeypatch.setattr(campaign, "train_iteration", fake_train)
    monkeypatch.setattr(campaign, "predict_instances", fake_predict)
    monkeypatch.setattr(ultralytics, "YOLO", lambda *args, **kwargs: object())
    config = CampaignConfig(name="c", root=tmp_path / "campaign", iterations=3, epochs_first=1, epochs_next=1)
    with pytest.raises(KeyboardInterrupt):
        campaign.run_campaign(config, initial)
    with pytest.raises(FileExistsError, match="resume"):
        campaign.run_campaign(config, initial)
    rows = campaign.run_campaign(config, None, resume=True)
    assert [row.iteration for row in rows] == [0, 1, 2]
    assert trained == [0, 1, 1, 2]  # iteration 0 was not trained again
    assert rows[0].pseudo_labels_added == 1 and rows[1].counts["train_labelled_images"] == 3


def test_an_unfinished_run_is_resumed_not_taken_as_trained(tmp_path):
    import torch

    from ml.landmarks.campaign import _training_finished

    running, finished = tmp_path / "running.pt", tmp_path / "finished.pt"
    # Ultralytics writes best.pt and last.pt every epoch with the optimizer; the end strips it, epoch −1.
    torch.save({"epoch": 41, "optimizer": {"state": {}}, "model": None}, running)
    torch.save({"epoch": -1, "optimizer": None, "model": None}, finished)
    assert not _training_finished(running)
    assert _training_finished(finished)


def test_time_boxes_and_initial_weights_reach_the_trainer(tmp_path, monkeypatch):
    """Iteration 0 (from the YAML) gets its time box and the initial weights; a fine-tune gets neither
    initial weights (they would overwrite the previous iteration's) nor the first box."""
    import ultralytics

    from ml.landmarks.campaign import EPOCHS_RUN, train_iteration

    calls: list[dict] = []

    class FakeYolo:
        def __init__(self, weights, task=None):
            self.weights = weights

        def add_callback(self, *args):
            pass

        def train(self, **kwargs):
            calls.append({"start": self.weights, **kwargs})
            trainer = {"best": "none.pt", "last": "last.pt", "metrics": {}, "epoch": 8}  # 9 epochs ran
            self.trainer = type("Trainer", (), trainer)()

    monkeypatch.setattr(ultralytics, "YOLO", FakeYolo)
    config = CampaignConfig(
        name="c", root=tmp_path, hours_first=0.5, hours_next=0.2, initial_weights="earlier.pt"
    )
    _, metrics = train_iteration(config, tmp_path / "data.yaml", 0, config.model_yaml, 60)
    train_iteration(config, tmp_path / "data.yaml", 1, "iter0-best.pt", 5)
    assert metrics[EPOCHS_RUN] == 9  # the report records the epochs the time box allowed, not 60
    assert calls[0]["time"] == 0.5 and calls[0]["pretrained"] == "earlier.pt"
    assert calls[1]["time"] == 0.2 and "pretrained" not in calls[1]
