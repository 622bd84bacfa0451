"""A study scene for the export and report tests: subjects with a pre and a post visit, one frontal photo
each (random pixels, so any change of pixels shows), and fabricated results (TEST DATA: made-up landmarks,
normality scores and wrinkle figures, never measurements)."""

import datetime
import hashlib
import io

import numpy as np
from django.core.files.base import ContentFile
from PIL import Image

from ml.zones.atlas import ZONES
from webapp.analysis import services as analysis_services
from webapp.analysis.kinds import KIND_SPECS
from webapp.analysis.models import AnalysisJob
from webapp.analysis.pairs import comparison_pairs_ensure, pair_assess
from webapp.runs.services import run_claim
from webapp.studies.models import Photo, PhotoView, Subject, Visit, VisitRole
from webapp.studies.services import comparison_create

WIDTH, HEIGHT = 320, 400
WEIGHTS_SHA = {"landmarks": "a" * 64, "normality": "b" * 64, "wrinkles": "c" * 64}


def synthetic_landmarks(shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """A plausible iBUG-68 frontal face in a 320×400 photo (TEST DATA), scaled and shifted."""
    points = np.zeros((68, 2))
    points[0:17, 1] = 190 + 120 * np.sin(np.linspace(0, np.pi, 17))
    points[0:17, 0] = 160 - 95 * np.cos(np.linspace(0, np.pi, 17))
    points[17:22] = np.c_[np.linspace(90, 145, 5), [150, 144, 142, 144, 148]]
    points[22:27] = np.c_[np.linspace(175, 230, 5), [148, 144, 142, 144, 150]]
    points[27:31] = np.c_[[160] * 4, np.linspace(165, 215, 4)]
    points[31:36] = np.c_[np.linspace(142, 178, 5), [222, 225, 227, 225, 222]]
    for start, centre in ((36, 118), (42, 202)):
        angles = np.linspace(0, 2 * np.pi, 7)[:-1]
        points[start : start + 6] = np.c_[centre - 16 * np.cos(angles), 170 - 6 * np.sin(angles)]
    outer = np.linspace(0, 2 * np.pi, 13)[:-1]
    points[48:60] = np.c_[160 - 34 * np.cos(outer), 262 - 12 * np.sin(outer)]
    inner = np.linspace(0, 2 * np.pi, 9)[:-1]
    points[60:68] = np.c_[160 - 24 * np.cos(inner), 262 - 4 * np.sin(inner)]
    centre = np.array([160.0, 200.0])
    return (points - centre) * scale + centre + shift


def landmarks_data(points: np.ndarray) -> dict:
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return {
        "faces": [
            {
                "box": [float(x0), float(y0), float(x1), float(y1)],
                "score": 0.99,
                "landmarks": points.tolist(),
                "pose": {"yaw": 0.0, "pitch": 0.0, "roll": 0.0},
            }
        ],
        "notes": ["TEST DATA"],
    }


def wrinkles_data(forehead_fraction: float) -> dict:
    zones = [
        {
            "number": zone.number,
            "abbreviation": zone.abbreviation,
            "name": zone.name,
            "zone_area_px": 1000,
            "wrinkle_area_px": int((forehead_fraction if zone.abbreviation == "FFA" else 0.0) * 1000),
            "area_fraction": forehead_fraction if zone.abbreviation == "FFA" else 0.0,
            "total_length_px": 10.0,
            "mean_width_px": 2.0,
            "count": 1,
        }
        for zone in ZONES
    ]
    return {"zones": zones, "notes": ["TEST DATA"]}


def normality_data(score: float) -> dict:
    return {
        "score": score,
        "rating": {"value": 4.0 + score / 10},
        "region": "mouth_nose",
        "notes": ["TEST DATA"],
    }


def fabricate_result(photo: Photo, kind: str, data: dict) -> None:
    """A succeeded job with a made-up result (TEST DATA)."""
    job = AnalysisJob.objects.create(
        kind=kind, photo=photo, queue=KIND_SPECS[kind].queue, model_name=f"test-{kind}-model"
    )
    analysis_services.job_succeed(
        job_id=job.pk,
        attempt=run_claim(AnalysisJob, run_id=job.pk, worker="test").attempt,
        data=data,
        model={"name": f"test-{kind}-model", "version": "v-test", "weights_sha256": WEIGHTS_SHA[kind]},
        parameters={},
        code_version="test",
        artifacts=[],
    )


def random_photo(visit: Visit, seed: int, view: str = PhotoView.FRONTAL) -> Photo:
    pixels = np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    content = buffer.getvalue()
    digest = hashlib.sha256(content).hexdigest()
    photo = Photo(
        study=visit.subject.study,
        visit=visit,
        view=view,
        content_hash=digest,
        image_hash=digest,
        source_format="PNG",
        width=WIDTH,
        height=HEIGHT,
        camera_make="TestCam",
    )
    photo.image.save("photo.png", ContentFile(content), save=False)
    photo.thumbnail.save("thumb.jpg", ContentFile(content), save=False)
    photo.save()
    return photo


def make_subject(study, code: str, actor, seed: int, *, landmarks: bool = True) -> dict:
    """A subject with a dated pre and post visit, a frontal photo each, results and a comparison."""
    subject = Subject.objects.create(study=study, code=code)
    pre_visit = Visit.objects.create(
        subject=subject, label="baseline", role=VisitRole.PRE, date=datetime.date(2026, 1, 5)
    )
    post_visit = Visit.objects.create(
        subject=subject, label="week 12", role=VisitRole.POST, date=datetime.date(2026, 4, 1)
    )
    pre, post = random_photo(pre_visit, seed), random_photo(post_visit, seed + 1)
    for photo, score, forehead, shift in ((pre, -1.2, 0.30, 0.0), (post, -0.8, 0.10, 3.0)):
        if landmarks:
            fabricate_result(photo, "landmarks", landmarks_data(synthetic_landmarks(shift=shift)))
        fabricate_result(photo, "normality", normality_data(score))
        fabricate_result(photo, "wrinkles", wrinkles_data(forehead))
    comparison = comparison_create(pre_visit=pre_visit, post_visit=post_visit, actor=actor)
    for pair in comparison_pairs_ensure(comparison):
        pair_assess(pair)
    return {"subject": subject, "pre": pre, "post": post, "comparison": comparison}
