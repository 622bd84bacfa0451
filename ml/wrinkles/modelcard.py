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


def at_threshold(report: dict, threshold: float | None) -> dict:
    """Box recall and pixel precision of an ``evaluate-boxes`` report at ``threshold`` (a row of its
    sweep), or at the model's own threshold when ``threshold`` is None."""
    if threshold is None or "sweep" not in report:
        return {
            "threshold": report["model"].get("threshold"),
            "box_recall": report["box_recall"],
            "pixel_precision": report["pixel_precision"],
        }
    rows = [row for row in report["sweep"] if abs(row["threshold"] - threshold) < 1e-9]
    if not rows:
        raise ValueError(f"The {report['split']} report has no sweep row at threshold {threshold}.")
    return rows[0]


def _box_row(report: dict, threshold: float | None, name: str | None = None) -> str:
    scores = at_threshold(report, threshold)
    name = name or f"{report['model'].get('name')} {report['model'].get('version', '')}"
    return (
        f"| {name} "
        f"({report['model'].get('input_region')}, {report['model'].get('size')} px, threshold "
        f"{scores['threshold']}) | {report['split']} | {report['photos']} | "
        f"{report['share_analysed']:.1%} | {scores['box_recall']:.3f} | "
        f"{scores['pixel_precision'] or 0:.3f} |"
    )


GOAL = 0.6


def goals_sentence(test_report: dict | None, threshold: float | None) -> str:
    """Which of issue 12's goals (box recall and pixel precision ≥ 0.6, every photo analysed) the held-out
    test split meets."""
    if test_report is None:
        return "Not measured on the test split."
    scores = at_threshold(test_report, threshold)
    checks = {
        f"box recall ≥ {GOAL}": scores["box_recall"] >= GOAL,
        f"pixel precision ≥ {GOAL}": (scores["pixel_precision"] or 0.0) >= GOAL,
        "every photo analysed": test_report["share_analysed"] == 1.0,
    }
    met = [name for name, ok in checks.items() if ok]
    missed = [name for name, ok in checks.items() if not ok]
    return (
        f"Goals on the held-out test photos: met — {', '.join(met) or 'none'}; not met — "
        f"{', '.join(missed) or 'none'}."
    )


def all_faces_lines(
    new: dict[str, dict], previous: dict[str, dict], version: str, previous_name: str | None
) -> list[str]:
    """The card's table of the every-face evaluation (``evaluate-boxes --faces all``), when its reports
    carry one: the source's training photos are collages, so the subject's face alone leaves most of the
    val boxes unscored."""
    rows = [
        (name, report)
        for split in ("val", "test")
        for name, report in (
            (previous_name or "previous model", previous.get(split)),
            (f"this model ({version})", new.get(split)),
        )
        if report is not None and "all_faces" in report
    ]
    if not rows:
        return []
    lines = [
        "",
        "Every detected face (`--faces all`, evaluation only: the product analyses the subject's face, the "
        "largest): each face analysed with its own landmarks, masks combined; boxes on no analysed face "
        "count as missed.",
        "",
        "| model | split | collages | faces analysed | boxes on no analysed face | box recall "
        "| recall on analysed faces | pixel precision |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, report in rows:
        every = report["all_faces"]
        lines.append(
            f"| {name} | {report['split']} | {report['layout']['collage_photos']} of {report['photos']} "
            f"| {every['faces_analysed']} | {every['boxes_on_no_analysed_face']} of {every['boxes']} "
            f"| {every['box_recall']:.3f} | {every['box_recall_on_analysed_faces']:.3f} "
            f"| {every['pixel_precision'] or 0:.3f} |"
        )
    return lines


def post_processing_lines(metadata: dict) -> list[str]:
    """The card's line on the mask post-processing the weights carry (none without settings)."""
    settings = metadata.get("post_processing")
    if not settings:
        return []
    steps = ", ".join(f"{key} {value}" for key, value in settings.items() if value is not None)
    return [
        f"* Post-processing of the mask (`ml/wrinkles/postprocess.py`, chosen on the val split with the "
        f"threshold, never on test): {steps}."
    ]


def ablation_lines(ablation_path: Path, out_path: Path) -> list[str]:
    """Card section of the loss-variant ablation on real photos (JSON of
    ``scripts/wrinkles_ablation_real.py``): each variant's mean ± SD over its seeds with the shipped
    post-processing, and the WDS − U-Net recall difference with its bootstrap interval over photos."""
    ablation = json.loads(Path(ablation_path).read_text())
    names = {"unet": "U-Net", "unet-ds": "U-Net + DS", "unet-wds": "U-Net + WDS"}

    def mean_sd(entry: dict) -> str:
        if entry["mean"] is None:
            return "–"
        return f"{entry['mean']:.3f}" + (f" ± {entry['sd']:.3f}" if entry["sd"] is not None else "")

    report = os.path.relpath(Path(ablation_path).with_suffix(".md"), Path(out_path).parent)
    seeds = sorted({seed for entry in ablation["seed_summary"] for seed in entry["seeds"]})
    lines = [
        "",
        "## Ablation on real photos",
        "",
        "The three loss variants fine-tuned with this model's recipe (same box labels, semi-synthetic "
        f"init, schedule and budget), seeds {', '.join(map(str, seeds))}; mean ± SD over the seeds, the "
        f"shipped post-processing ([report]({report}), `{ablation['command']}`):",
        "",
        "| variant | split | box recall | pixel precision | JSI against the box labels |",
        "|---|---|---|---|---|",
    ]
    for entry in ablation["seed_summary"]:
        lines.append(
            f"| {names[entry['model']]} | {entry['split']} | {mean_sd(entry['post_box_recall'])} "
            f"| {mean_sd(entry['post_pixel_precision'])} | {mean_sd(entry['jsi'])} |"
        )
    differences = [
        row
        for row in ablation["comparisons"]
        if (row["a"], row["b"], row["setting"]) == ("unet-wds", "unet", "post")
    ]
    if differences:

        def seed_by_seed(row: dict) -> str:
            values = ", ".join(f"{seed['box_recall_difference']:+.3f}" for seed in row.get("per_seed", []))
            return f" (seed by seed {values})" if values else ""

        parts = [
            f"{row['split']} {row['box_recall_difference']:+.3f} "
            f"[{row['box_recall_interval'][0]:+.3f}, {row['box_recall_interval'][1]:+.3f}]{seed_by_seed(row)}"
            for row in differences
        ]
        lines += [
            "",
            f"Box recall of WDS − U-Net, seeds pooled, {ablation['bootstrap']['confidence']:.0%} bootstrap "
            f"interval over photos: {'; '.join(parts)}.",
        ]
    return lines


def write_real_photo_card(
    checkpoint: Path,
    new_report_path: Path,
    previous_report_path: Path,
    out_path: Path,
    version: str,
    label_report_path: Path | None = None,
    previous_name: str | None = None,
    ablation_path: Path | None = None,
) -> dict:
    """Card of a wrinkle model fine-tuned on real-photo labels from boxes: the box evaluation of the new
    and of the previous model on the held-out splits (JSON of ``evaluate-boxes --out``), Markdown at
    ``out_path`` and the registry card beside the checkpoint; with ``label_report_path`` (JSON of
    ``evaluate --out`` on the box-label folder) also the JSI against the test split's box labels, the
    figure the platform compares model versions by; ``previous_name`` names the previous model in the
    table when its report names only a checkpoint; ``ablation_path`` (JSON of
    ``scripts/wrinkles_ablation_real.py``) adds the loss-variant ablation on real photos. Returns the
    registry metrics."""
    checkpoint = Path(checkpoint)
    size_bytes = checkpoint.stat().st_size
    if size_bytes > MAX_WEIGHTS_BYTES:
        raise ValueError(f"{checkpoint} is {size_bytes / 2**20:.1f} MiB; the shipped limit is 25 MiB.")
    _, metadata = load_checkpoint(checkpoint)
    new = {report["split"]: report for report in json.loads(Path(new_report_path).read_text())["reports"]}
    previous = {
        report["split"]: report for report in json.loads(Path(previous_report_path).read_text())["reports"]
    }
    training = metadata["training"]
    digest = file_sha256(checkpoint)
    command = (
        f"python -m ml wrinkles train --data {metadata['data']} --out {checkpoint.name} --init "
        f"{metadata.get('init')} --variant {metadata['variant']} --size {metadata['size']} --patch "
        f"{metadata['patch']} --lr {metadata['learning_rate']} --epochs {len(training['history'])}"
    )
    threshold = metadata.get("threshold")
    metrics = {
        "label": "real photographs with human wrinkle boxes",
        **{
            f"{split}_{key}": at_threshold(new[split], threshold)[key]
            for split in new
            for key in ("box_recall", "pixel_precision")
        },
        **{f"{split}_share_analysed": new[split]["share_analysed"] for split in new},
        **{
            f"{split}_all_faces_{key}": new[split]["all_faces"][key]
            for split in new
            if "all_faces" in new[split]
            for key in ("box_recall", "pixel_precision")
        },
        "threshold": threshold,
        "validation_jsi_on_box_labels": training["validation"].get("jsi"),
    }
    jsi_line = []
    if label_report_path is not None:
        label_report = json.loads(Path(label_report_path).read_text())
        row = next(item for item in label_report["results"] if item["method"] == metadata["variant"])
        metrics["jsi"] = row["jsi"]
        metrics["jsi_data"] = f"{label_report['test_images']} test photos against their box labels"
        jsi_line = [
            f"* JSI against the semi-automatic box labels of the {label_report['test_images']} test photos: "
            f"{row['jsi']:.4f} (`{label_report.get('command', 'not recorded')}`; the network's mask"
            f"{', before post-processing' if metadata.get('post_processing') else ''})",
        ]
    lines = [
        f"# Wrinkle model card: {metadata['variant']} fine-tuned on real photographs (version {version})",
        "",
        f"* Weights: `{checkpoint.name}`, fp16, {size_bytes / 2**20:.2f} MiB, SHA-256 `{digest}`",
        "* Method: U-Net with weighted deep supervision and RGB + texture-map input (Kim et al., "
        "Artif Intell Med 2023), pretrained on semi-synthetic creases (the previous shipped model), "
        "fine-tuned on semi-automatic labels from human wrinkle boxes (Kim et al.'s labelling with the box "
        "as rough mask).",
        f"* Input: the whole-face square from 68 landmarks at {metadata['size']} px "
        f"(`input_region` {metadata.get('input_region')}); probability threshold "
        f"{metadata.get('threshold')} (chosen on the val split).",
        *post_processing_lines(metadata),
        f"* Training data: `{metadata['data']}` — {len(metadata['train_names'])} train photos; "
        f"{len(metadata['validation_names'])} val photos choose the epoch; the "
        f"{len(metadata['test_names'])} test photos (the source's validation split) were never used.",
        f"* Training: {len(training['history'])} epochs (time-boxed on a shared CPU), epoch "
        f"{training['best_epoch'] + 1} kept (val JSI against the box labels "
        f"{training['validation'].get('jsi', float('nan')):.4f}); {training['seconds'] / 60:.0f} min.",
        f"* Training command: `{command}` (`--init`: the weights installed when the fine-tune ran)",
        f"* Evaluation command: `{json.loads(Path(new_report_path).read_text()).get('command')}`",
        *jsi_line,
        "",
        "## Box evaluation on real photographs (docs/wrinkles.md, *Box evaluation*)",
        "",
        "| model | split | photos | analysed | box recall | pixel precision |",
        "|---|---|---|---|---|---|",
    ]
    for split in ("val", "test"):
        if split in previous:
            lines.append(_box_row(previous[split], None, previous_name))
        if split in new:
            lines.append(_box_row(new[split], threshold, f"this model ({version})"))
    lines += all_faces_lines(new, previous, version, previous_name)
    if ablation_path is not None:
        lines += ablation_lines(ablation_path, out_path)
    lines += [
        "",
        "## Limits",
        "",
        goals_sentence(new.get("test"), threshold),
        "The labels are semi-automatic (a threshold of the texture map inside human boxes), not hand-drawn "
        "lines, so the model learns their biases. The source's training photos (the train and val splits) "
        "are collages (mosaics of parts of several photos); the first table scores the subject's face "
        "alone, the product's rule, so the boxes of the other faces count as missed there. Trained for "
        "minutes on a shared CPU.",
        "",
        "## Licence",
        "",
        "Research use only: fine-tuned on the wrinkle-boxes photos (source says MIT, photo provenance "
        "undocumented) from weights trained on MEBeauty faces (non-commercial research only).",
    ]
    Path(out_path).write_text("\n".join(lines) + "\n")
    write_card(
        card_path(checkpoint),
        ModelCard(
            name=WRINKLES_UNET_WDS,
            task="wrinkle-segmentation",
            version=version,
            description="U-Net with weighted deep supervision (Kim et al., Artif Intell Med 2023), RGB + "
            "texture-map input, segmenting wrinkles on the whole face (square from 68 landmarks); "
            "pretrained on semi-synthetic creases, fine-tuned on real photos.",
            data=f"Real photographs with human wrinkle boxes (wrinkle-boxes): semi-automatic labels from the "
            f"boxes, {len(metadata['train_names'])} train / {len(metadata['validation_names'])} val photos; "
            "pretrained on semi-synthetic images (MEBeauty faces with rendered human wrinkle shapes).",
            command=command,
            licence="Non-commercial research use only (MEBeauty faces in pretraining; wrinkle-boxes "
            "photos of undocumented provenance).",
            limitations=goals_sentence(new.get("test"), threshold)
            + " Labels are semi-automatic, not hand-drawn; trained for minutes on a shared CPU.",
            metrics=metrics,
            weights=checkpoint.name,
            weights_sha256=digest,
            details={"training_data_label": metadata["data_label"], "markdown": Path(out_path).name},
        ),
    )
    return metrics
