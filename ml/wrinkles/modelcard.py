"""Model card of a wrinkle checkpoint, filled only from its metadata and a measured evaluation."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ml.model_names import WRINKLES_UNET_WDS
from ml.modelcard import ModelCard, card_path, write_card
from ml.registry import file_sha256
from ml.wrinkles.synthesize import read_index
from ml.wrinkles.train import load_checkpoint

MAX_WEIGHTS_BYTES = 25 * 2**20


def _data_provenance(data_dir: Path) -> str:
    """Faces and wrinkle masks behind a synthesized folder, from its ``index.csv``."""
    try:
        rows = list(read_index(data_dir))
    except FileNotFoundError:
        return "provenance not available (no index.csv beside the training data)"
    faces = sorted({row["face"] for row in rows if row.get("face")})
    shapes = {row["wrinkle_mask"] for row in rows if row.get("wrinkle_mask")}
    if not faces:
        return f"{len(rows)} images"
    face_folder = os.path.commonpath(faces) if len(faces) > 1 else faces[0]
    return (
        f"{len(rows)} images rendered by `python -m ml wrinkles synthesize` from {len(faces)} faces "
        f"under `{face_folder}` and {len(shapes)} human wrinkle masks"
    )


def model_card(checkpoint: Path, report: dict, crossval: dict | None = None) -> tuple[str, dict]:
    """Markdown card and the metrics dict for the registry, for the row of ``report`` (from
    ``python -m ml wrinkles evaluate``) whose method is the checkpoint's variant."""
    checkpoint = Path(checkpoint)
    _, metadata = load_checkpoint(checkpoint)
    size_bytes = checkpoint.stat().st_size
    if size_bytes > MAX_WEIGHTS_BYTES:
        raise ValueError(f"{checkpoint} is {size_bytes / 2**20:.1f} MiB; the shipped limit is 25 MiB.")
    rows = [row for row in report["results"] if row["method"] == metadata["variant"]]
    if not rows:
        raise ValueError(
            f"The report has no row for '{metadata['variant']}'; evaluate that checkpoint first."
        )
    row = rows[0]
    train_command = (
        f"python -m ml wrinkles train --data {metadata['data']} --out {checkpoint.name} "
        f"--variant {metadata['variant']} --width {metadata['base_width']} --size {metadata['size']} "
        f"--patch {metadata.get('patch', metadata['size'])} --epochs {len(metadata['training']['history'])} "
        f"--folds {metadata['folds']} --fold {metadata['fold']} --seed {metadata['seed']} "
        f"--lr {metadata.get('learning_rate', 0.01)}"
    )
    filters = [item for item in report["results"] if item["method"] in ("frangi", "gabor")]
    training = metadata["training"]
    metrics = {
        "label": report["label"],
        "test_images": report["test_images"],
        **{key: row[key] for key in ("jsi", "jsi_per_image", "accuracy", "sensitivity", "specificity")},
        "validation_jsi": training["validation"].get("jsi"),
    }
    lines = [
        f"# Wrinkle model card: {metadata['variant']} "
        f"(width {metadata['base_width']}, {metadata['size']} px)",
        "",
        f"* Weights: `{checkpoint.name}`, fp16, {size_bytes / 2**20:.2f} MiB, "
        f"SHA-256 `{file_sha256(checkpoint)}`",
        "* Method: U-Net with RGB + texture-map input (Kim et al., Artif Intell Med 2023).",
        f"* Training data: `{metadata['data']}` ({metadata['data_label']}), fold {metadata['fold']} of "
        f"{metadata['folds']} split by face: {len(metadata['train_names'])} training, "
        f"{len(metadata['validation_names'])} validation, {len(metadata['test_names'])} test images; "
        f"{_data_provenance(Path(metadata['data']))}.",
        f"* Training: {len(training['history'])} epochs, checkpoint of epoch {training['best_epoch'] + 1} "
        f"chosen on validation JSI {training['validation'].get('jsi', float('nan')):.4f}; "
        f"{training['seconds'] / 60:.1f} min.",
        f"* Training command: `{train_command}`",
        f"* Evaluation command: `{report.get('command', 'not recorded')}`",
        "",
        f"## Measured on held-out {report['label']} test faces ({report['test_images']} images)",
        "",
        "| method | JSI pooled | JSI per image | accuracy | sensitivity | specificity |",
        "|---|---|---|---|---|---|",
    ]
    for item in [row, *filters]:
        lines.append(
            f"| {item['method']} | {item['jsi']:.4f} | {item['jsi_per_image']:.4f} | {item['accuracy']:.4f} "
            f"| {item['sensitivity']:.4f} | {item['specificity']:.4f} |"
        )
    if crossval is not None:
        lines += [
            "",
            f"## {crossval['folds']}-fold cross-validation of the same recipe ({crossval['label']}, "
            f"{crossval['test_images']} test images)",
            "",
            "Every image is tested once, by the models trained without its fold; this card's weights are",
            f"those of fold {metadata['fold']}. Command: `{crossval.get('command', 'not recorded')}`",
            "",
            "| method | JSI pooled | JSI per fold, mean ± SD |",
            "|---|---|---|",
        ]
        for item in crossval["results"]:
            spread = f"{item['fold_jsi_mean']:.4f} ± {item['fold_jsi_sd']:.4f}"
            lines.append(f"| {item['method']} | {item['jsi']:.4f} | {spread} |")
        metrics["crossval_jsi"] = {item["method"]: item["jsi"] for item in crossval["results"]}
    lines += [
        "",
        "## Limits",
        "",
        f"All figures are {report['label']}: human wrinkle shapes rendered onto real faces. They do not",
        "measure performance on real wrinkle photographs.",
        "",
        "## Licence",
        "",
        "Research use only. The wrinkle shapes are the Apache-2.0 wrinkle masks; the faces they are",
        "rendered onto are MEBeauty photographs, licensed for non-commercial research only, so these",
        "weights may be used for non-commercial research only.",
    ]
    return "\n".join(lines) + "\n", metrics


def write_model_card(
    checkpoint: Path, report_path: Path, out_path: Path, crossval_path: Path | None = None
) -> dict:
    """Write the card (``out_path``, Markdown) and the registry's model card beside the checkpoint; with
    ``crossval_path`` (JSON of ``wrinkles crossval --out``) the card also shows the k-fold table."""
    report = json.loads(Path(report_path).read_text())
    crossval = json.loads(Path(crossval_path).read_text()) if crossval_path else None
    card, metrics = model_card(checkpoint, report, crossval)
    Path(out_path).write_text(card)
    _, metadata = load_checkpoint(checkpoint)
    digest = file_sha256(checkpoint)
    write_card(
        card_path(checkpoint),
        ModelCard(
            name=WRINKLES_UNET_WDS,
            task="wrinkle-segmentation",
            version=f"{metadata['variant']}-w{metadata['base_width']}-{digest[:8]}",
            description="U-Net with weighted deep supervision (Kim et al., Artif Intell Med 2023), RGB + "
            "texture-map input, segmenting wrinkles in the forehead-and-eye crop placed from 68 landmarks.",
            data=f"{metadata['data_label']}: {_data_provenance(Path(metadata['data']))}; "
            f"fold {metadata['fold']} of {metadata['folds']} split by face.",
            command=next(line for line in card.splitlines() if line.startswith("* Training command:")).split(
                "`"
            )[1],
            licence="Non-commercial research use only (the wrinkle shapes are Apache-2.0; the faces they are "
            "rendered onto are MEBeauty photographs, non-commercial research only).",
            limitations=f"All figures are {report['label']}; they do not measure performance on real wrinkle "
            "photographs."
            if report["label"] != "real"
            else "Measured on the test photos named in the card.",
            metrics=metrics,
            weights=Path(checkpoint).name,
            weights_sha256=digest,
            details={"training_data_label": metadata["data_label"], "markdown": Path(out_path).name},
        ),
    )
    return metrics
