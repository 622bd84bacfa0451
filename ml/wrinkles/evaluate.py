"""Comparison table of wrinkle segmenters on held-out image/mask pairs (Kim et al. 2023, Table 3).

Methods: ``unet``, ``unet-ds``, ``unet-wds`` (checkpoints written by :mod:`ml.wrinkles.train`),
``frangi``, ``gabor`` and ``model`` (the registry's shipped model). The test images are the test
names recorded in the checkpoints (all checkpoints must agree), so no method sees them while
training or choosing a checkpoint. The Frangi and Gabor thresholds are fitted on the checkpoints'
training names. Every figure is labelled semi-synthetic when the data set is. ``split="val"`` scores the
checkpoints' validation names instead (the images that chose their epoch), for comparisons that must
choose nothing on test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import cv2

from ml.wrinkles.baselines import FILTERS, fit_threshold, normalised_response
from ml.wrinkles.metrics import confusion, pool, summarize
from ml.wrinkles.train import (
    PROBABILITY_THRESHOLD,
    data_set_description,
    load_checkpoint,
    load_pair,
    predict_probabilities,
    read_samples,
    stack_input,
)

MAX_THRESHOLD_FIT_IMAGES = 40
EvaluatedSplit = Literal["test", "val"]
EVALUATED_SPLITS: tuple[str, ...] = ("test", "val")
_NAMES_OF_SPLIT = {"test": "test_names", "val": "validation_names"}


def evaluate_methods(
    data_dir: Path,
    checkpoints: Sequence[Path],
    methods: Sequence[str] = ("unet", "unet-ds", "unet-wds", "frangi", "gabor"),
    log: Callable[[str], None] = print,
    split: EvaluatedSplit = "test",
) -> dict:
    """``{"label", "data", "evaluated_split", "images", "test_images", "results": [{"method", "jsi",
    "jsi_per_image", "accuracy", "sensitivity", "specificity", ...}]}`` for the requested methods, on the
    checkpoints' test names (``test_images`` and ``test_names`` only then) or validation names."""
    if split not in EVALUATED_SPLITS:
        raise ValueError(f"Unknown split '{split}'; choose one of {', '.join(EVALUATED_SPLITS)}.")
    names_key = _NAMES_OF_SPLIT[split]
    samples = {sample.name: sample for sample in read_samples(data_dir)}
    label = data_set_description(data_dir)["label"]
    loaded = [load_checkpoint(path) for path in checkpoints]
    by_variant = {
        metadata["variant"]: (model, metadata, path)
        for (model, metadata), path in zip(loaded, checkpoints, strict=True)
    }
    if not loaded:
        raise ValueError("Give at least one checkpoint: it defines the held-out test split.")
    test_names = loaded[0][1][names_key]
    if any(metadata[key] != loaded[0][1][key] for _, metadata in loaded for key in _NAMES_OF_SPLIT.values()):
        raise ValueError("The checkpoints were trained on different splits; evaluate them separately.")
    size = int(loaded[0][1]["size"])
    missing = [name for name in test_names if name not in samples]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} test images of the checkpoints are not in {data_dir} (e.g. {missing[0]})."
        )
    test_pairs = [load_pair(samples[name], size) for name in test_names]
    results = []
    for method in methods:
        if method in FILTERS:
            train_names = loaded[0][1]["train_names"][:MAX_THRESHOLD_FIT_IMAGES]
            train_pairs = [load_pair(samples[name], size) for name in train_names]
            threshold = fit_threshold(
                [normalised_response(image, method) for image, _ in train_pairs],
                [mask for _, mask in train_pairs],
            )
            predictions = [normalised_response(image, method) > threshold for image, _ in test_pairs]
            details = {"threshold": threshold, "threshold_fitted_on": f"{len(train_pairs)} training images"}
        elif method == "model":
            network, metadata, description = _shipped_model()
            model_size = int(metadata["size"])
            inputs = [stack_input(cv2.resize(image, (model_size, model_size))) for image, _ in test_pairs]
            probabilities = predict_probabilities(network, inputs)
            predictions = [
                cv2.resize(probability, (size, size)) > PROBABILITY_THRESHOLD for probability in probabilities
            ]
            details = {"model": description["name"], "version": description["version"]}
        elif method in by_variant:
            model, metadata, path = by_variant[method]
            probabilities = predict_probabilities(model, [stack_input(image) for image, _ in test_pairs])
            predictions = [probability > PROBABILITY_THRESHOLD for probability in probabilities]
            details = {
                "checkpoint": str(path),
                "base_width": metadata["base_width"],
                "epochs": len(metadata["training"]["history"]),
            }
        else:
            raise ValueError(
                f"No checkpoint for method '{method}' (have {', '.join(sorted(by_variant)) or 'none'})."
            )
        confusions = [
            confusion(prediction, mask) for prediction, (_, mask) in zip(predictions, test_pairs, strict=True)
        ]
        summary = summarize(confusions)
        results.append({"method": method, **summary, "confusion": asdict(pool(confusions)), **details})
        log(f"{method}: JSI {summary['jsi']:.4f} ({label})")
    return {
        "label": label,
        "data": str(data_dir),
        "size": size,
        "evaluated_split": split,
        "images": len(test_names),
        **({"test_images": len(test_names), "test_names": list(test_names)} if split == "test" else {}),
        **({"validation_names": list(test_names)} if split == "val" else {}),
        "split": {key: loaded[0][1][key] for key in ("folds", "fold", "seed")},
        "results": results,
    }


def _shipped_model() -> tuple:
    from ml.registry import registry
    from ml.wrinkles.models import DEFAULT_WRINKLE_MODEL

    description = registry.describe(DEFAULT_WRINKLE_MODEL)
    if not description["trained"]:
        raise ValueError(f"The shipped model has no trained weights ({description['weights_path']}).")
    network, metadata = registry.load(DEFAULT_WRINKLE_MODEL)
    return network, metadata, description


def markdown_table(report: dict, command: str) -> str:
    """The report as a Markdown table with its label and the command that produced it."""
    lines = [
        f"# Wrinkle segmentation comparison ({report['label']} data)",
        "",
        f"All figures are measured on **{report['label']}** images"
        + (
            " (human wrinkle shapes rendered onto real faces), not on real wrinkle photographs."
            if "semi-synthetic" in report["label"]
            else " (real photographs; the ground truth is semi-automatic, not hand-drawn)."
        ),
        "",
        f"Command: `{command}`",
        "",
        f"{'Validation' if report.get('evaluated_split') == 'val' else 'Test'} images: {report['images']} "
        f"at {report['size']}×{report['size']}.",
        "",
        "| method | JSI pooled | JSI per image | accuracy | sensitivity | specificity |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        lines.append(
            f"| {row['method']} | {row['jsi']:.4f} | {row['jsi_per_image']:.4f} | {row['accuracy']:.4f} "
            f"| {row['sensitivity']:.4f} | {row['specificity']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def write_report(
    report: dict, out_path: Path, command: str, render: Callable[[dict, str], str] = markdown_table
) -> None:
    """``out_path`` (.md, rendered by ``render``) and the same name with .json."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.with_suffix(".md").write_text(render(report, command))
    out_path.with_suffix(".json").write_text(
        json.dumps({**report, "command": command}, indent=2, default=float)
    )
