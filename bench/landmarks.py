"""Landmark job latency through a real worker, ingest time of a 12-megapixel JPEG, direct analysis time.

Runs inside a configured Django (see bench/__main__.py, which points it at a throwaway database,
broker and media folder). Every figure is measured here; nothing is estimated.
"""

import csv
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ml.model_names import DLIB_68

JOB_TIMEOUT_SECONDS = 300.0
TWELVE_MEGAPIXELS = (4000, 3000)
JPEG_QUALITY = 92


class BenchmarkDataError(RuntimeError):
    """The face data the benchmark needs is missing."""


def summarise(values: list[float]) -> dict[str, float]:
    """Median, p95 (linear interpolation between order statistics), mean, min and max, in seconds."""
    array = np.asarray(values, dtype=float)
    return {
        "n": int(array.size),
        "median": round(float(np.median(array)), 4),
        "p95": round(float(np.percentile(array, 95)), 4),
        "mean": round(float(array.mean()), 4),
        "min": round(float(array.min()), 4),
        "max": round(float(array.max()), 4),
    }


def data_faces(data_dir: Path, count: int) -> list[Path]:
    """`count` distinct real face photos: FASSEG frontal faces, then MEBeauty originals, in a fixed order."""
    fasseg = data_dir / "fasseg" / "frontal" / "train" / "images"
    faces = sorted(fasseg.glob("*.jpg"), key=lambda path: int(path.stem)) if fasseg.is_dir() else []
    index = data_dir / "mebeauty" / "images.csv"
    if index.exists():
        with index.open(newline="") as handle:
            originals = sorted({row["original"] for row in csv.DictReader(handle) if row["original"]})
        faces += [
            data_dir / "mebeauty" / name for name in originals if (data_dir / "mebeauty" / name).is_file()
        ]
    if len(faces) < count:
        raise BenchmarkDataError(
            f"The benchmark needs {count} face photos but found {len(faces)} under {data_dir} "
            "(fasseg/frontal/train/images/*.jpg and mebeauty originals)."
        )
    return faces[:count]


def twelve_megapixel_jpeg(face: Path, seed: int) -> bytes:
    """A 4000×3000 JPEG (quality 92) made from a real face: scaled to cover, centre-cropped, mild noise.

    The noise (σ = 2 grey levels, seeded) makes every call's bytes distinct, so the study's duplicate
    check does not refuse repeated ingests.
    """
    from PIL import Image

    width, height = TWELVE_MEGAPIXELS
    with Image.open(face) as source:
        source = source.convert("RGB")
        scale = max(width / source.width, height / source.height)
        scaled = source.resize(
            (round(source.width * scale), round(source.height * scale)), Image.Resampling.BICUBIC
        )
    left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
    pixels = np.asarray(scaled.crop((left, top, left + width, top + height)), dtype=np.float32)
    pixels += np.random.default_rng(seed).normal(0.0, 2.0, pixels.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=JPEG_QUALITY
    )
    return buffer.getvalue()


def _upload(content: bytes, name: str, content_type: str):
    """The upload object Django's request parsing hands a view for a file of this size."""
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile

    if len(content) <= settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
        return SimpleUploadedFile(name, content, content_type=content_type)
    upload = TemporaryUploadedFile(name, content_type, len(content), None)
    upload.write(content)
    upload.seek(0)
    return upload


def _timed_ingest(
    visit, user, content: bytes, name: str, content_type: str, *, analyse: bool = False
) -> tuple[Any, float]:
    """Store one photo; with ``analyse``, as the site's upload does (``photo_upload``: the study's analyses
    are queued in the same transaction), else the ingest alone."""
    from webapp.analysis.services import photo_upload
    from webapp.studies.ingest import photo_ingest

    upload = _upload(content, name, content_type)
    started = time.perf_counter()
    store = photo_upload if analyse else photo_ingest
    photo = store(visit=visit, view="frontal", upload=upload, uploaded_by=user)
    elapsed = time.perf_counter() - started
    upload.close()
    return photo, elapsed


def _new_visit(study, user, code: str):
    from webapp.studies.models import VisitRole
    from webapp.studies.services import subject_create, visit_create

    subject = subject_create(study=study, code=code, actor=user)
    return visit_create(subject=subject, label="baseline", role=VisitRole.PRE, date=None, actor=user)


def bench_ingest_12mp(user, face: Path, runs: int) -> dict[str, Any]:
    """Ingest time (validation, decode, EXIF transpose, PNG + thumbnail encode, storage, DB) of 12 MP JPEGs.

    Run it while no worker runs: the landmark jobs these ingests queue must not compete for the CPU
    (the caller purges them from the broker before starting its worker).
    """
    from webapp.studies.services import study_create

    study = study_create(name=f"Bench ingest {time.time_ns()}", creator=user)
    visit = _new_visit(study, user, "B12MP")
    times, sizes = [], []
    for run in range(runs):
        content = twelve_megapixel_jpeg(face, seed=run)
        sizes.append(len(content))
        photo, elapsed = _timed_ingest(visit, user, content, "large.jpg", "image/jpeg")
        assert (photo.width, photo.height) == TWELVE_MEGAPIXELS, (photo.width, photo.height)
        times.append(elapsed)
    return {
        "source_face": face.name,
        "width": TWELVE_MEGAPIXELS[0],
        "height": TWELVE_MEGAPIXELS[1],
        "jpeg_quality": JPEG_QUALITY,
        "jpeg_megabytes": round(statistics.median(sizes) / 1e6, 2),
        "seconds": [round(value, 4) for value in times],
        "summary": summarise(times),
    }


def _wait_finished(job_id: int):
    from django.db import close_old_connections

    from webapp.analysis.models import AnalysisJob
    from webapp.runs.models import ACTIVE_STATUSES, RunStatus

    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while True:
        close_old_connections()
        job = AnalysisJob.objects.get(pk=job_id)
        if job.status not in ACTIVE_STATUSES:
            if job.status != RunStatus.SUCCEEDED:
                raise RuntimeError(f"Job {job_id} ended {job.status}: {job.error}")
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"Job {job_id} is still {job.status} after {JOB_TIMEOUT_SECONDS:.0f} s.")
        time.sleep(0.05)


def _job_timings(job) -> dict[str, float]:
    return {
        "queue_wait": (job.started_at - job.created_at).total_seconds(),
        "run": (job.finished_at - job.started_at).total_seconds(),
        "end_to_end": (job.finished_at - job.created_at).total_seconds(),
    }


def bench_worker_latency(user, faces: list[Path], log: Callable[[str], None]) -> tuple[dict[str, Any], list]:
    """Ingest each face and wait for its landmark job on the running worker, one photo at a time.

    The first face warms the worker up (its process loads the dlib models during that job) and is
    reported apart. Returns the report section and the photos of the measured jobs.
    """
    from webapp.analysis.models import AnalysisJob
    from webapp.studies.services import study_create

    study = study_create(name=f"Bench latency {time.time_ns()}", creator=user)
    visit = _new_visit(study, user, "BLAT")
    per_job, ingest_seconds, photos = [], [], []
    cold = None
    for index, face in enumerate(faces):
        photo, ingest_elapsed = _timed_ingest(
            visit, user, face.read_bytes(), face.name, "image/jpeg", analyse=True
        )
        job = _wait_finished(AnalysisJob.objects.get(photo=photo, kind="landmarks").pk)
        timings = {key: round(value, 4) for key, value in _job_timings(job).items()}
        faces_found = len(job.result.data["faces"])
        if index == 0:
            cold = {"photo": face.name, "faces_found": faces_found, **timings}
            log(f"  warm-up job (cold worker): {timings['run']:.2f} s run")
            continue
        per_job.append(
            {
                "photo": f"{face.parent.name}/{face.name}",
                "width": photo.width,
                "height": photo.height,
                "faces_found": faces_found,
                "ingest": round(ingest_elapsed, 4),
                **timings,
            }
        )
        ingest_seconds.append(ingest_elapsed)
        photos.append(photo)
        log(
            f"  job {index}/{len(faces) - 1}: queue {timings['queue_wait']:.2f} s, run {timings['run']:.2f} s"
        )
    section = {
        "cold_first_job": cold,
        "jobs": per_job,
        "queue_wait": summarise([job["queue_wait"] for job in per_job]),
        "run": summarise([job["run"] for job in per_job]),
        "end_to_end": summarise([job["end_to_end"] for job in per_job]),
        "ingest_of_these_photos": summarise(ingest_seconds),
        "photos_with_one_face": sum(job["faces_found"] == 1 for job in per_job),
    }
    return section, photos


def bench_direct_analysis(photos: list, large_face: Path, large_runs: int = 3) -> dict[str, Any]:
    """`analyze_landmarks` alone (no queue, no database) on the stored images of the measured photos.

    The models are loaded before timing; the load time is reported apart. A 12 MP image is timed too.
    """
    from ml.core.imageio import load_image
    from ml.landmarks.analysis import analyze_landmarks
    from ml.registry import registry

    images = []
    for photo in photos:
        with photo.image.open("rb") as handle:
            images.append(load_image(handle.read()))
    started = time.perf_counter()
    analyze_landmarks(images[0])  # the first call builds dlib's detector and shape predictor
    first_call = time.perf_counter() - started
    times = []
    for image in images:
        started = time.perf_counter()
        analyze_landmarks(image)
        times.append(time.perf_counter() - started)
    large = load_image(twelve_megapixel_jpeg(large_face, seed=1000))
    large_times = []
    for _ in range(large_runs):
        started = time.perf_counter()
        analyze_landmarks(large)
        large_times.append(time.perf_counter() - started)
    return {
        "model": registry.describe(DLIB_68)["version"],
        "first_call_with_model_load": round(first_call, 4),
        "per_photo": summarise(times),
        "twelve_megapixel": summarise(large_times),
    }
