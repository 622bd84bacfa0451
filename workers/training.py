"""The "train wrinkle model" task (GPU queue): k-fold cross-validation of the U-Net with weighted deep
supervision (Kim et al. 2023) on a study's saved wrinkle labels, then registration of a new
`wrinkles-unet-wds` model version with the cross-validation figures.

Folds are split by subject (`ml.wrinkles.metrics.kfold_splits`); `ml.wrinkles.train.train_model` picks
each fold's checkpoint on the validation subjects drawn from its training folds, and only afterwards is
the fold's test part predicted. The registered weights are the checkpoint of the fold with the best
validation JSI (chosen without looking at any test fold). They are stored as a local file under
`MEDIA_ROOT/models/wrinkles/` (workers that run wrinkle jobs must share that folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.model_names import WRINKLES_UNET_WDS
from webapp.runs import task_names
from workers.celery import app

if TYPE_CHECKING:
    from webapp.labeling.models import TrainingJob
    from workers.runs import RunContext

# Longer than the analyses' default limit, shorter than the Redis visibility timeout (4 h), after
# which an unacknowledged task would be delivered a second time.
SOFT_TIME_LIMIT_SECONDS = int(os.environ.get("FACET_TRAINING_SOFT_TIME_LIMIT", str(3 * 3600)))
SYNTHETIC_PREFIX = "synthetic-"
DEFAULT_MAX_SYNTHETIC = 200


def synthetic_data_dir() -> Path:
    """The semi-synthetic set written by `python -m ml wrinkles synthesize`: $FACET_WRINKLE_SYNTH_DIR,
    else <FACET_VAR_DIR>/wrinkles-synth."""
    from django.conf import settings

    return Path(os.environ.get("FACET_WRINKLE_SYNTH_DIR", Path(settings.VAR_DIR) / "wrinkles-synth"))


def _append_synthetic(index_path: Path, synthetic_dir: Path, limit: int) -> int:
    """Add semi-synthetic rows (absolute paths, group prefixed) to a label index; returns how many."""
    import csv

    from ml.wrinkles.synthesize import read_index

    rows = list(read_index(synthetic_dir))[:limit]
    with index_path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        for row in rows:
            # Columns: name, image, mask, face; the rest of the label index stays empty.
            writer.writerow(
                [
                    f"{SYNTHETIC_PREFIX}{row['name']}",
                    str(synthetic_dir / row["image"]),
                    str(synthetic_dir / row["mask"]),
                    f"{SYNTHETIC_PREFIX}{row.get('face') or row['name']}",
                ]
            )
    return len(rows)


def _test_fold_confusions(checkpoint: Path, data_dir: Path, test_indices: list[int], size: int) -> list:
    from ml.wrinkles.metrics import confusion
    from ml.wrinkles.train import (
        PROBABILITY_THRESHOLD,
        load_checkpoint,
        load_pair,
        predict_probabilities,
        read_samples,
        stack_input,
    )

    samples = read_samples(data_dir)
    chosen = [
        samples[index] for index in test_indices if not samples[index].name.startswith(SYNTHETIC_PREFIX)
    ]
    if not chosen:
        return []
    model, _ = load_checkpoint(checkpoint)
    pairs = [load_pair(sample, size) for sample in chosen]
    probabilities = predict_probabilities(model, [stack_input(image) for image, _ in pairs])
    return [
        confusion(p > PROBABILITY_THRESHOLD, mask) for p, (_, mask) in zip(probabilities, pairs, strict=True)
    ]


def run_wrinkle_training(job: TrainingJob, report: Callable[[float, str], None]) -> dict[str, Any]:
    """Export the job's labels, cross-validate, store the chosen weights and register a model version.

    `report(fraction, message)` is called once per epoch and raises `ml.progress.Cancelled` to stop.
    Returns the metrics and the registered model version."""
    from django.conf import settings

    from ml.wrinkles.metrics import kfold_splits, summarize
    from ml.wrinkles.synthesize import LABEL as SYNTHETIC_LABEL
    from ml.wrinkles.train import read_samples, train_model
    from webapp.analysis.services import model_version_register
    from webapp.labeling import selectors, services

    parameters = job.parameters
    labels = selectors.labels_by_ids(job.study, job.label_ids)
    if not labels:
        raise ValueError("The labels this job was started with no longer exist.")
    width, size, epochs = int(parameters["width"]), int(parameters["size"]), int(parameters["epochs"])
    with tempfile.TemporaryDirectory(prefix=f"facet-wrinkle-training-{job.pk}-") as scratch:
        data_dir = Path(scratch) / "data"
        report(0.0, f"Exporting {len(labels)} label(s)")
        services.dataset_write(labels, data_dir)
        synthetic_count = 0
        if parameters.get("include_synthetic"):
            synthetic_dir = synthetic_data_dir()
            if not (synthetic_dir / "index.csv").is_file():
                raise FileNotFoundError(
                    f"No semi-synthetic set at {synthetic_dir}; create it with `python -m ml wrinkles "
                    "synthesize` or set FACET_WRINKLE_SYNTH_DIR, or train without it."
                )
            synthetic_count = _append_synthetic(
                data_dir / "index.csv",
                synthetic_dir,
                int(parameters.get("max_synthetic", DEFAULT_MAX_SYNTHETIC)),
            )
        groups = [sample.group for sample in read_samples(data_dir)]
        subjects = len({group for group in groups if not group.startswith(SYNTHETIC_PREFIX)})
        folds = min(int(parameters["folds"]), len(set(groups)) - 1)
        if folds < 2:
            raise ValueError(f"Cross-validation needs at least 4 subjects with labels; there are {subjects}.")
        splits = kfold_splits(groups, folds=folds, seed=0)
        if any(not split.train for split in splits):
            raise ValueError(
                f"With {subjects} subject(s) some of the {folds} folds leave no training images besides the "
                "validation subjects; label photos of more subjects or choose fewer folds."
            )
        total_epochs = folds * epochs
        done = {"epochs": 0}
        per_fold, all_confusions = [], []
        best_fold, best_validation = 0, -1.0
        for fold in range(folds):

            def log(message: str, fold: int = fold) -> None:
                done["epochs"] += 1
                if not synthetic_count:
                    # train_model names its data semi-synthetic; here it is the study's own labels.
                    message = message.replace(f" ({SYNTHETIC_LABEL})", "")
                # The last 5 % are the test-fold predictions and the registration.
                report(0.95 * done["epochs"] / total_epochs, f"Fold {fold + 1}/{folds}: {message}")

            result = train_model(
                data_dir,
                Path(scratch) / f"fold-{fold}.pt",
                variant="unet-wds",
                base_width=width,
                size=size,
                epochs=epochs,
                folds=folds,
                fold=fold,
                seed=0,
                log=log,
            )
            confusions = _test_fold_confusions(result.checkpoint, data_dir, splits[fold].test, size)
            all_confusions.extend(confusions)
            per_fold.append(
                {
                    "fold": fold,
                    "best_epoch": result.best_epoch,
                    "validation_jsi": result.validation.get("jsi"),
                    "test": summarize(confusions) if confusions else None,
                }
            )
            if result.validation.get("jsi", -1.0) > best_validation:
                best_fold, best_validation = fold, result.validation["jsi"]
        report(0.97, "Registering the model version")
        metrics = {
            "data": f"{len(labels)} wrinkle label(s) of {subjects} subject(s) in study {job.study_id}"
            + (f" + {synthetic_count} semi-synthetic image(s) (training only)" if synthetic_count else ""),
            "cv": {
                "folds": folds,
                "split": "by subject",
                "pooled": summarize(all_confusions),
                "per_fold": per_fold,
            },
            "registered_fold": best_fold,
            "selection": "each fold's checkpoint chosen on its validation subjects; registered weights are "
            "the fold with the best validation JSI; test folds only measured",
            "parameters": {"variant": "unet-wds", "width": width, "size": size, "epochs": epochs},
        }
        weights_dir = Path(settings.MEDIA_ROOT) / "models" / "wrinkles"
        weights_dir.mkdir(parents=True, exist_ok=True)
        weights_path = weights_dir / f"training-job-{job.pk}.pt"
        shutil.copyfile(Path(scratch) / f"fold-{best_fold}.pt", weights_path)
    digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()
    model_version = model_version_register(
        name=WRINKLES_UNET_WDS,
        task="wrinkle-segmentation",
        version=f"trained-job-{job.pk}",
        source=f"trained by job {job.pk} on study {job.study_id} labels",
        weights_path=str(weights_path),
        weights_sha256=digest,
        metrics=metrics,
        model_card=_model_card(job, metrics),
    )
    return {"metrics": metrics, "model_version": model_version}


def _model_card(job: TrainingJob, metrics: dict[str, Any]) -> str:
    pooled = metrics["cv"]["pooled"]
    return (
        f"U-Net + weighted deep supervision (Kim et al. 2023), trained by Facet training job {job.pk}.\n"
        f"Data: {metrics['data']}.\n"
        f"Cross-validation ({metrics['cv']['folds']} folds by subject, {pooled['images']} test images): "
        f"pooled JSI {pooled['jsi']:.4f}, per-image JSI {pooled['jsi_per_image']:.4f}, sensitivity "
        f"{pooled['sensitivity']:.4f}, specificity {pooled['specificity']:.4f}.\n"
        f"Parameters: {json.dumps(metrics['parameters'])}. {metrics['selection']}.\n"
        "Few labels give unreliable figures; check them before activating this version."
    )


@app.task(
    bind=True,
    name=task_names.WRINKLE_TRAINING,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=SOFT_TIME_LIMIT_SECONDS,
    time_limit=SOFT_TIME_LIMIT_SECONDS + 300,
)
def train_wrinkle_model(self, training_job_id: int) -> None:
    from webapp.labeling.models import TrainingJob
    from workers.runs import execute

    execute(TrainingJob, training_job_id, self.request.hostname or "worker", train)


def train(context: RunContext) -> None:
    from webapp.labeling import services

    outcome = run_wrinkle_training(context.run, context.progress)
    services.training_job_succeed(
        job_id=context.run.pk,
        attempt=context.attempt,
        metrics=outcome["metrics"],
        model_version=outcome["model_version"],
    )
