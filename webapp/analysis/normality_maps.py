"""The cohort's average normality heatmaps: per arm, the mean heatmap of the subjects' pre photos, of
their post photos, and the mean of each subject's post − pre difference, on the aligned face (the
normality analysis's crop: one frame for every photo), drawn over the cohort's mean aligned face.

They are read from the normality results' stored artifacts: ``normality-pse``, the heatmap's values (the
metric the job used, PSE by default, summed over channels; NaN outside the scoring region), and
``normality-aligned``, the aligned face. Results stored before the values were kept have only the
colour PNG, scaled per photo, which cannot be averaged: their subjects are counted as left out."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
from django.core.cache import cache
from PIL import Image

from webapp.analysis.cohort import STATISTICS_CACHE_SECONDS, CohortFilters, study_pairs
from webapp.analysis.models import ResultArtifact
from webapp.runs.models import RunStatus
from webapp.studies.models import AnalysisKind, Study

PSE_MAP_ARTIFACT = "normality-pse"
ALIGNED_ARTIFACT = "normality-aligned"
NPY_TYPE = "application/x-npy"


def pse_map_bytes(heatmap: np.ndarray, region_mask: np.ndarray) -> bytes:
    """The heatmap's magnitude per pixel inside the scoring region (NaN outside), as a float32 .npy."""
    magnitude = heatmap.sum(axis=-1) if heatmap.ndim == 3 else heatmap
    values = np.where(region_mask, magnitude, np.nan).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=False)
    return buffer.getvalue()


@dataclass
class ArmMaps:
    """One arm's average maps (H × W, NaN outside every subject's scoring region) and mean aligned face."""

    arm: str
    n: int
    pre: np.ndarray
    post: np.ndarray
    difference: np.ndarray
    face: np.ndarray


@dataclass
class NormalityMaps:
    """The average maps per arm, the heatmap metric, and how many subjects each reason left out."""

    metric: str
    arms: list[ArmMaps]
    subjects: int
    without_maps: int
    other_frame: int


@dataclass(frozen=True)
class _SubjectMaps:
    arm: str
    pre: ResultArtifact
    post: ResultArtifact
    face: ResultArtifact | None


def _included_pairs(study: Study, filters: CohortFilters | None, view: str) -> dict[int, dict]:
    """Per subject, its latest comparison's pair of ``view`` when that pair is in the statistics."""
    chosen: dict[int, dict] = {}
    values = study_pairs(study, filters).filter(view=view, assessed_at__isnull=False)
    for pair in values.values(
        "comparison_id",
        "comparison__subject_id",
        "comparison__subject__arm",
        "pre_photo_id",
        "post_photo_id",
        "warnings",
        "accepted_at",
    ):
        if pair["warnings"] and pair["accepted_at"] is None:
            continue
        subject = pair["comparison__subject_id"]
        if subject not in chosen or pair["comparison_id"] > chosen[subject]["comparison_id"]:
            chosen[subject] = pair
    return chosen


def _artifacts(photo_ids: set[int]) -> dict[tuple[int, str], ResultArtifact]:
    """The artifacts of each photo's latest succeeded normality result, by (photo, name), in one query."""
    found: dict[tuple[int, str], ResultArtifact] = {}
    artifacts = (
        ResultArtifact.objects.filter(
            result__job__photo_id__in=photo_ids,
            result__job__kind=AnalysisKind.NORMALITY,
            result__job__status=RunStatus.SUCCEEDED,
            name__in=(PSE_MAP_ARTIFACT, ALIGNED_ARTIFACT),
        )
        .select_related("result__job")
        .order_by("result__job__finished_at", "pk")
    )
    latest: dict[int, int] = {}
    for artifact in artifacts:
        job = artifact.result.job
        latest[job.photo_id] = artifact.result_id  # ordered by finish: the last one is the latest
        found[(job.photo_id, artifact.name)] = artifact
    return {key: artifact for key, artifact in found.items() if artifact.result_id == latest[key[0]]}


def _load_map(artifact: ResultArtifact) -> np.ndarray:
    with artifact.file.open("rb") as stored:
        return np.load(io.BytesIO(stored.read()), allow_pickle=False)


def _load_face(artifact: ResultArtifact) -> np.ndarray:
    with artifact.file.open("rb") as stored, Image.open(stored) as image:
        return np.asarray(image.convert("L"), dtype=np.float32)


def cohort_normality_maps(
    study: Study, filters: CohortFilters | None = None, *, view: str = "frontal"
) -> NormalityMaps:
    """The average maps of the subjects in the cohort statistics (latest comparison, comparable or
    accepted pair of ``view``), cached by the artifacts they are computed from."""
    pairs = _included_pairs(study, filters, view)
    artifacts = _artifacts(
        {photo for pair in pairs.values() for photo in (pair["pre_photo_id"], pair["post_photo_id"])}
    )
    subjects: list[_SubjectMaps] = []
    for pair in pairs.values():
        pre = artifacts.get((pair["pre_photo_id"], PSE_MAP_ARTIFACT))
        post = artifacts.get((pair["post_photo_id"], PSE_MAP_ARTIFACT))
        if pre is not None and post is not None:
            face = artifacts.get((pair["pre_photo_id"], ALIGNED_ARTIFACT))
            subjects.append(_SubjectMaps(pair["comparison__subject__arm"], pre, post, face))
    # Artifacts are written once and never changed: their ids identify the maps' content.
    identity = sorted(
        [entry.arm, entry.pre.pk, entry.post.pk, entry.face.pk if entry.face else 0] for entry in subjects
    )
    key = (
        "cohort-normality-maps:"
        + hashlib.sha256(json.dumps([study.pk, len(pairs), identity]).encode()).hexdigest()
    )
    cached = cache.get(key)
    if cached is not None:
        return cached
    maps = _average(subjects, included=len(pairs))
    cache.set(key, maps, STATISTICS_CACHE_SECONDS)
    return maps


def _average(subjects: list[_SubjectMaps], *, included: int) -> NormalityMaps:
    loaded = []
    for entry in subjects:
        metric = (entry.pre.result.data.get("metric") or {}).get("heatmap") or "pse"
        pre, post = _load_map(entry.pre), _load_map(entry.post)
        face = _load_face(entry.face) if entry.face is not None else None
        loaded.append((entry.arm, metric, pre, post, face))
    # Maps average only within one frame: the most common (metric, crop size); others are counted out.
    frames = Counter((metric, pre.shape) for _, metric, pre, post, _ in loaded if pre.shape == post.shape)
    frame = frames.most_common(1)[0][0] if frames else ("pse", (0, 0))
    kept = [entry for entry in loaded if (entry[1], entry[2].shape) == frame and entry[3].shape == frame[1]]
    arms = []
    for arm in sorted({entry[0] for entry in kept}):
        members = [entry for entry in kept if entry[0] == arm]
        pre = np.stack([entry[2] for entry in members])
        post = np.stack([entry[3] for entry in members])
        # Each photo has its own scoring region: a subject counts at a pixel only where both its photos
        # were scored, so at every pixel the mean pre, mean post and mean difference come from the same
        # subjects, and the mean post − mean pre is the mean difference (as the page's figures state).
        paired = np.isfinite(pre) & np.isfinite(post)
        pre, post = np.where(paired, pre, np.nan), np.where(paired, post, np.nan)
        faces = [entry[4] for entry in members if entry[4] is not None and entry[4].shape == frame[1]]
        with warnings.catch_warnings():
            # A pixel outside every subject's scoring region has an all-NaN mean: NaN, as it should.
            warnings.simplefilter("ignore", category=RuntimeWarning)
            arms.append(
                ArmMaps(
                    arm=arm,
                    n=len(members),
                    pre=np.nanmean(pre, axis=0),
                    post=np.nanmean(post, axis=0),
                    difference=np.nanmean(post - pre, axis=0),
                    face=np.mean(faces, axis=0) if faces else np.full(frame[1], 128.0, dtype=np.float32),
                )
            )
    return NormalityMaps(
        metric=frame[0],
        arms=arms,
        subjects=included,
        without_maps=included - len(subjects),
        other_frame=len(subjects) - len(kept),
    )


METRIC_NAMES = {"pse": "PSE (squared error, YCbCr)", "ssim": "1 − SSIM", "lpips": "LPIPS"}


@dataclass
class MapsChart:
    """One arm's maps as a PNG (pre, post, post − pre over the mean aligned face) and its text alternative."""

    arm: str
    title: str
    png: bytes
    description: str


def _where(values: np.ndarray, pick) -> str:
    """Where ``pick`` (np.nanargmax or np.nanargmin) lands, in per cent across and down the face."""
    row, column = np.unravel_index(pick(values), values.shape)
    return (
        f"{100 * column / values.shape[1]:.0f} % across and {100 * row / values.shape[0]:.0f} % down the face"
    )


def _extremes(difference: np.ndarray) -> str:
    """Where the mean difference decreases and increases most (only the directions that occur)."""
    parts = []
    if np.nanmin(difference) < 0:
        parts.append(f"largest mean decrease at {_where(difference, np.nanargmin)}")
    if np.nanmax(difference) > 0:
        parts.append(f"largest mean increase at {_where(difference, np.nanargmax)}")
    if not parts:
        return "No pixel changed on average. "
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + ". "


def normality_maps_charts(maps: NormalityMaps) -> list[MapsChart]:
    """Per arm, the average maps drawn with Matplotlib: pre and post on one colour scale (0 to the
    99th percentile of both), the difference on a diverging scale symmetric around zero."""
    from matplotlib.figure import Figure

    metric = METRIC_NAMES.get(maps.metric, maps.metric)
    charts = []
    for arm in maps.arms:
        inside = np.isfinite(arm.difference)
        if not inside.any():
            continue
        both = np.concatenate([arm.pre[inside], arm.post[inside]])
        top = float(np.percentile(both, 99)) or 1.0
        spread = float(np.percentile(np.abs(arm.difference[inside]), 99)) or 1.0
        figure = Figure(figsize=(9.6, 3.6))
        panels = (
            ("pre", arm.pre, "magma", 0.0, top),
            ("post", arm.post, "magma", 0.0, top),
            ("post − pre", arm.difference, "RdBu_r", -spread, spread),
        )
        for index, (label, values, colours, low, high) in enumerate(panels):
            axes = figure.add_subplot(1, 3, index + 1)
            axes.imshow(arm.face, cmap="gray", vmin=0, vmax=255)
            image = axes.imshow(np.ma.masked_invalid(values), cmap=colours, vmin=low, vmax=high, alpha=0.75)
            axes.set_title(f"{label} (n={arm.n})", fontsize=9)
            axes.axis("off")
            figure.colorbar(image, ax=axes, fraction=0.046, pad=0.02)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        lower = float(np.mean(arm.difference[inside] < 0))
        region_means = (np.nanmean(arm.pre), np.nanmean(arm.post), np.nanmean(arm.difference))
        description = (
            f"{arm.arm or 'no arm'}: mean {metric} heatmap of {arm.n} subjects on the aligned face. "
            "Mean over the scoring region: pre {:.3g}, post {:.3g}, change {:+.3g}; ".format(*region_means)
            + f"{lower:.0%} of the region's pixels are lower after. "
            + _extremes(arm.difference)
            + "A lower value is closer to the model's normal face."
        )
        charts.append(
            MapsChart(
                arm.arm, f"Average normality heatmaps · {arm.arm or 'no arm'}", buffer.getvalue(), description
            )
        )
    return charts
