"""One runner per analysis kind: read the photo, call the ml pipeline, return what to record.

Runners hold no Celery or database logic beyond reading the photo, so they are easy to test and
to call from a benchmark. Models are loaded through ml.registry, which caches them per process.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webapp.analysis.kinds import AnalysisKind
from webapp.analysis.models import AnalysisJob
from webapp.analysis.services import Artifact

Progress = Callable[[float, str], None]


@dataclass
class RunOutcome:
    data: dict[str, Any]
    model: dict[str, Any]
    parameters: dict[str, Any]
    artifacts: list[Artifact] = field(default_factory=list)


def read_photo_bytes(job: AnalysisJob) -> bytes:
    with job.photo.image.open("rb") as handle:
        return handle.read()


def run_landmarks(job: AnalysisJob, progress: Progress) -> RunOutcome:
    from ml.core.alignment import align_face
    from ml.core.imageio import encode_jpeg, load_image
    from ml.landmarks.analysis import analyze_landmarks
    from ml.registry import registry

    progress(0.05, "Reading photo")
    image = load_image(read_photo_bytes(job))
    parameters = {"view": job.photo.view, "expected_yaw": job.photo.expected_yaw}
    data = analyze_landmarks(
        image, expected_yaw=job.photo.expected_yaw, model=job.model_name, progress=progress
    )
    artifacts = []
    if len(data["faces"]) == 1:
        import numpy as np

        progress(0.9, "Aligning face")
        aligned, _ = align_face(image, np.asarray(data["faces"][0]["landmarks"], dtype=float))
        artifacts.append(Artifact("aligned", encode_jpeg(aligned), "jpg", "image/jpeg"))
    return RunOutcome(
        data=data, model=registry.describe(job.model_name), parameters=parameters, artifacts=artifacts
    )


RUNNERS: dict[str, Callable[[AnalysisJob, Progress], RunOutcome]] = {
    AnalysisKind.LANDMARKS: run_landmarks,
}
