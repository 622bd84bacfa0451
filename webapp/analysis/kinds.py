"""Analysis kinds, the Celery queue each runs on, and the ml model each uses by default."""

from dataclasses import dataclass

from django.db import models


class AnalysisKind(models.TextChoices):
    LANDMARKS = "landmarks", "Landmarks and quality"


class Queue(models.TextChoices):
    CPU = "cpu", "CPU"
    GPU = "gpu", "GPU"


@dataclass(frozen=True)
class KindSpec:
    queue: str
    default_model: str


KIND_SPECS: dict[str, KindSpec] = {
    AnalysisKind.LANDMARKS: KindSpec(queue=Queue.CPU, default_model="dlib-68"),
}
