"""k-fold cross-validation of the wrinkle segmenters (Kim et al. 2023, Sec. 4.2).

A runs folder holds one sub-folder per fold, each with the checkpoints of the variants trained on
that fold (``python -m ml wrinkles train --folds K --fold k``). Every fold is evaluated on its own
held-out test images with :func:`ml.wrinkles.evaluate.evaluate_methods` (checkpoints chosen on
validation images only). Across folds every image is tested exactly once, so the confusion counts
are pooled over the whole data set (the paper's JSI), and the spread of the per-fold JSIs shows how
much of a difference between methods is noise.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

from ml.wrinkles.evaluate import evaluate_methods
from ml.wrinkles.metrics import Confusion, pool
from ml.wrinkles.synthesize import LABEL


def fold_folders(runs_dir: Path) -> list[Path]:
    """Sub-folders of ``runs_dir`` that hold checkpoints, in name order."""
    folders = sorted(path for path in Path(runs_dir).iterdir() if path.is_dir() and any(path.glob("*.pt")))
    if not folders:
        raise FileNotFoundError(f"No fold folder with checkpoints (*.pt) under {runs_dir}.")
    return folders


def cross_validate(
    data_dir: Path,
    runs_dir: Path,
    methods: Sequence[str] = ("unet", "unet-ds", "unet-wds", "frangi", "gabor"),
    log: Callable[[str], None] = print,
) -> dict:
    """Per-fold reports and, per method, JSI pooled over all folds, per-fold mean ± SD and the
    pooled accuracy, sensitivity and specificity."""
    if "model" in methods:
        raise ValueError(
            "The shipped model cannot be cross-validated: it was trained on other folds' test images. "
            "Evaluate it with 'wrinkles evaluate' on the split it was trained on."
        )
    fold_reports = []
    for folder in fold_folders(runs_dir):
        log(f"{folder.name}:")
        fold_reports.append(evaluate_methods(data_dir, sorted(folder.glob("*.pt")), methods, log))
    _check_folds(fold_reports)
    folds = fold_reports[0]["split"]["folds"]
    summary = [_pool_method(method, fold_reports) for method in methods]
    return {
        "label": LABEL,
        "data": str(data_dir),
        "size": fold_reports[0]["size"],
        "folds": folds,
        "folds_evaluated": [report["split"]["fold"] for report in fold_reports],
        "complete": len(fold_reports) == folds,
        "test_images": sum(report["test_images"] for report in fold_reports),
        "results": summary,
        "fold_reports": [
            {key: value for key, value in report.items() if key != "test_names"} for report in fold_reports
        ],
    }


def _check_folds(reports: Sequence[dict]) -> None:
    settings = {(report["split"]["folds"], report["split"]["seed"], report["size"]) for report in reports}
    if len(settings) > 1:
        raise ValueError("The fold folders come from different splits (folds, seed or size differ).")
    indices = [report["split"]["fold"] for report in reports]
    if len(set(indices)) != len(indices):
        raise ValueError(f"A fold is evaluated twice (folds {sorted(indices)}); keep one folder per fold.")
    tested: set[str] = set()
    for report in reports:
        overlap = tested & set(report["test_names"])
        if overlap:
            raise ValueError(f"{len(overlap)} test images appear in two folds (e.g. {min(overlap)}).")
        tested |= set(report["test_names"])


def _pool_method(method: str, reports: Sequence[dict]) -> dict:
    rows = [next(row for row in report["results"] if row["method"] == method) for report in reports]
    pooled = pool([Confusion(**row["confusion"]) for row in rows])
    images = sum(row["images"] for row in rows)
    fold_jsi = [row["jsi"] for row in rows]
    return {
        "method": method,
        "jsi": pooled.jsi,
        "jsi_per_image": sum(row["jsi_per_image"] * row["images"] for row in rows) / images,
        "accuracy": pooled.accuracy,
        "sensitivity": pooled.sensitivity,
        "specificity": pooled.specificity,
        "images": images,
        "fold_jsi": fold_jsi,
        "fold_jsi_mean": statistics.fmean(fold_jsi),
        "fold_jsi_sd": statistics.stdev(fold_jsi) if len(fold_jsi) > 1 else 0.0,
    }


def markdown_table(report: dict, command: str) -> str:
    """Pooled and per-fold tables with the data label and the command."""
    folds = report["folds_evaluated"]
    coverage = "all folds" if report["complete"] else f"folds {folds} of {report['folds']} only"
    lines = [
        f"# Wrinkle segmentation, {report['folds']}-fold cross-validation ({report['label']} data)",
        "",
        f"All figures are measured on **{report['label']}** images (human wrinkle shapes rendered onto",
        "real faces), not on real wrinkle photographs.",
        "",
        f"Command: `{command}`",
        "",
        f"Test images: {report['test_images']} at {report['size']}×{report['size']} ({coverage}; each image",
        "is in exactly one test fold).",
        "",
        "| method | JSI pooled | JSI per fold, mean ± SD | JSI per image | accuracy | sensitivity "
        "| specificity |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        lines.append(
            f"| {row['method']} | {row['jsi']:.4f} | {row['fold_jsi_mean']:.4f} ± {row['fold_jsi_sd']:.4f} "
            f"| {row['jsi_per_image']:.4f} | {row['accuracy']:.4f} | {row['sensitivity']:.4f} "
            f"| {row['specificity']:.4f} |"
        )
    lines += [
        "",
        "JSI (pooled) per fold:",
        "",
        "| method | " + " | ".join(f"fold {fold}" for fold in folds) + " |",
        "|---|" + "---|" * len(folds),
    ]
    for row in report["results"]:
        lines.append(f"| {row['method']} | " + " | ".join(f"{jsi:.4f}" for jsi in row["fold_jsi"]) + " |")
    return "\n".join(lines) + "\n"
