"""The study's pre→post measures as every export reads them: one row per comparison, view and measure,
with the identifiers, visit dates and provenance (model name, version, weights SHA-256) of both sides.

Bounded queries whatever the study's size: the comparisons, the photos of their visits and the latest
succeeded result of each photo and kind are read in three queries. Deleted subjects, visits and photos
are left out (the `alive()` querysets).
"""

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db.models import QuerySet

from ml.zones.atlas import ZONES
from webapp.analysis import results as analysis_results
from webapp.analysis.models import Result
from webapp.runs.models import RunStatus
from webapp.studies.models import AnalysisKind, Comparison, Photo, PhotoView, Study

ZONE_NAMES = {zone.abbreviation: zone.name for zone in ZONES}


@dataclass(frozen=True)
class Provenance:
    """Which result gave a figure, and the model that computed it."""

    result_id: int
    model_name: str
    model_version: str
    weights_sha256: str


@dataclass(frozen=True)
class Measure:
    """One measure of one pre/post pair. `key` is stable and machine-readable (`wrinkles.FFA.area_percent`);
    `noise_floor` is the smallest change the measure resolves (None where it has not been measured)."""

    key: str
    label: str
    unit: str
    kind: str
    pre: float | None
    post: float | None
    noise_floor: float | None = None
    pre_source: Provenance | None = None
    post_source: Provenance | None = None

    @property
    def change(self) -> float | None:
        return None if self.pre is None or self.post is None else self.post - self.pre

    @property
    def beyond_noise(self) -> bool | None:
        """Whether the change is larger than the noise floor (None when either is unknown)."""
        if self.change is None or self.noise_floor is None:
            return None
        return abs(self.change) > self.noise_floor


@dataclass(frozen=True)
class Side:
    """The visit and photo of one side of a comparison."""

    visit_id: int
    visit_label: str
    visit_date: datetime.date | None
    visit_role: str
    photo_id: int | None


@dataclass
class PairRow:
    """One comparison for one view photographed at both visits, with all its measures."""

    study_id: int
    subject_id: int
    subject_code: str
    comparison_id: int
    view: str
    pre: Side
    post: Side
    measures: list[Measure] = field(default_factory=list)
    pre_photo: Photo | None = None
    post_photo: Photo | None = None


def _provenance(result: Result | None) -> Provenance | None:
    if result is None:
        return None
    return Provenance(result.pk, result.model_name, result.model_version, result.weights_sha256)


def _latest_results(photos: QuerySet[Photo]) -> dict[tuple[int, str], Result]:
    """The latest succeeded result of each (photo, kind), in one query."""
    latest: dict[tuple[int, str], Result] = {}
    found = (
        Result.objects.filter(job__photo__in=photos, job__status=RunStatus.SUCCEEDED)
        .select_related("job")
        .order_by("job__finished_at", "pk")
    )
    for result in found:
        latest[(result.job.photo_id, result.job.kind)] = result
    return latest


def pair_measures(
    pre: dict[str, Result], post: dict[str, Result], zones_of_interest: list[str]
) -> list[Measure]:
    """Every measure the results of a pre and a post photo give (keyed by analysis kind)."""
    measures: list[Measure] = []

    def data(side: dict[str, Result], kind: str) -> dict | None:
        result = side.get(kind)
        return result.data if result is not None else None

    def add(key: str, label: str, unit: str, kind: str, before: float | None, after: float | None) -> None:
        if before is None and after is None:
            return
        measures.append(
            Measure(
                key=key,
                label=label,
                unit=unit,
                kind=kind,
                pre=before,
                post=after,
                pre_source=_provenance(pre.get(kind)),
                post_source=_provenance(post.get(kind)),
            )
        )

    normality = AnalysisKind.NORMALITY.value
    pre_n, post_n = data(pre, normality), data(post, normality)
    add(
        "normality.score",
        "Normality score S (higher = more normal)",
        "S",
        normality,
        _number(pre_n, "score"),
        _number(post_n, "score"),
    )
    add(
        "normality.rating",
        "Rating (1–7, 7 = most normal)",
        "1–7",
        normality,
        _number((pre_n or {}).get("rating"), "value"),
        _number((post_n or {}).get("rating"), "value"),
    )

    wrinkles = AnalysisKind.WRINKLES.value
    pre_w, post_w = data(pre, wrinkles), data(post, wrinkles)
    add(
        "wrinkles.zones_of_interest.area_percent",
        "Wrinkle area in the zones of interest (% of their area)",
        "%",
        wrinkles,
        analysis_results.zones_of_interest_wrinkle_percent(pre_w, zones_of_interest),
        analysis_results.zones_of_interest_wrinkle_percent(post_w, zones_of_interest),
    )
    pre_wz, post_wz = _by_zone(pre_w), _by_zone(post_w)
    for zone in zones_of_interest:
        add(
            f"wrinkles.{zone}.area_percent",
            f"Wrinkle area, {ZONE_NAMES.get(zone, zone)} (% of the zone)",
            "%",
            wrinkles,
            _percent(pre_wz.get(zone), "area_fraction"),
            _percent(post_wz.get(zone), "area_fraction"),
        )

    zones = AnalysisKind.ZONES.value
    pre_z, post_z = _by_zone(data(pre, zones)), _by_zone(data(post, zones))
    for zone in zones_of_interest:
        add(
            f"zones.{zone}.face_percent",
            f"Zone area, {ZONE_NAMES.get(zone, zone)} (% of the face)",
            "%",
            zones,
            _percent(pre_z.get(zone), "face_fraction"),
            _percent(post_z.get(zone), "face_fraction"),
        )
    return measures


def _number(data: dict | None, key: str) -> float | None:
    value = (data or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def _percent(data: dict | None, key: str) -> float | None:
    value = _number(data, key)
    return None if value is None else 100.0 * value


def _by_zone(data: dict | None) -> dict[str, dict]:
    return {zone["abbreviation"]: zone for zone in (data or {}).get("zones", [])}


def _pair_photos(photos: list[Photo]) -> dict[str, Photo]:
    """One photo per view: the latest uploaded, as the comparison page shows it."""
    chosen: dict[str, Photo] = {}
    for photo in sorted(photos, key=lambda photo: (photo.uploaded_at, photo.pk)):
        chosen[photo.view] = photo
    return chosen


def comparisons_of(study: Study, subject_id: int | None = None) -> QuerySet[Comparison]:
    comparisons = (
        Comparison.objects.alive()
        .filter(subject__study=study)
        .select_related("subject", "pre_visit", "post_visit")
        .order_by("subject__code", "pre_visit__date", "created_at", "pk")
    )
    return comparisons.filter(subject_id=subject_id) if subject_id is not None else comparisons


def pair_rows(study: Study, *, comparison_id: int | None = None) -> list[PairRow]:
    """Every comparison of the study (or one), per view photographed at both visits, with its measures."""
    comparisons = list(comparisons_of(study))
    if comparison_id is not None:
        comparisons = [comparison for comparison in comparisons if comparison.pk == comparison_id]
    visit_ids = {visit_id for c in comparisons for visit_id in (c.pre_visit_id, c.post_visit_id)}
    photos = Photo.objects.alive().filter(study=study, visit_id__in=visit_ids)
    by_visit: dict[int, list[Photo]] = {}
    for photo in photos:
        by_visit.setdefault(photo.visit_id, []).append(photo)
    results = _latest_results(photos)
    view_order = {view: index for index, view in enumerate(PhotoView.values)}
    rows = []
    for comparison in comparisons:
        pre_photos = _pair_photos(by_visit.get(comparison.pre_visit_id, []))
        post_photos = _pair_photos(by_visit.get(comparison.post_visit_id, []))
        for view in sorted(set(pre_photos) & set(post_photos), key=view_order.__getitem__):
            pre_photo, post_photo = pre_photos[view], post_photos[view]
            rows.append(
                PairRow(
                    study_id=study.pk,
                    subject_id=comparison.subject_id,
                    subject_code=comparison.subject.code,
                    comparison_id=comparison.pk,
                    view=view,
                    pre=_side(comparison.pre_visit, pre_photo),
                    post=_side(comparison.post_visit, post_photo),
                    measures=pair_measures(
                        _kinds(results, pre_photo), _kinds(results, post_photo), study.zones_of_interest
                    ),
                    pre_photo=pre_photo,
                    post_photo=post_photo,
                )
            )
    return rows


def _kinds(results: dict[tuple[int, str], Result], photo: Photo) -> dict[str, Result]:
    return {kind: results[(photo.pk, kind)] for kind in AnalysisKind.values if (photo.pk, kind) in results}


def _side(visit, photo: Photo | None) -> Side:
    return Side(visit.pk, visit.label, visit.date, visit.role, photo.pk if photo else None)


MEASURE_COLUMNS = [
    "study_id",
    "subject_id",
    "subject_code",
    "comparison_id",
    "view",
    "pre_visit_id",
    "pre_visit_label",
    "pre_visit_date",
    "post_visit_id",
    "post_visit_label",
    "post_visit_date",
    "pre_photo_id",
    "post_photo_id",
    "measure",
    "measure_label",
    "unit",
    "pre",
    "post",
    "change",
    "noise_floor",
    "change_beyond_noise_floor",
    "pre_result_id",
    "post_result_id",
    "pre_model_name",
    "pre_model_version",
    "post_model_name",
    "post_model_version",
    "pre_weights_sha256",
    "post_weights_sha256",
]


def measure_records(rows: list[PairRow]) -> Iterator[list]:
    """The long table of every export: one list of values per row of MEASURE_COLUMNS (None = empty)."""
    for row in rows:
        for measure in row.measures:
            pre, post = measure.pre_source, measure.post_source
            yield [
                row.study_id,
                row.subject_id,
                row.subject_code,
                row.comparison_id,
                row.view,
                row.pre.visit_id,
                row.pre.visit_label,
                row.pre.visit_date,
                row.post.visit_id,
                row.post.visit_label,
                row.post.visit_date,
                row.pre.photo_id,
                row.post.photo_id,
                measure.key,
                measure.label,
                measure.unit,
                measure.pre,
                measure.post,
                measure.change,
                measure.noise_floor,
                measure.beyond_noise,
                pre.result_id if pre else None,
                post.result_id if post else None,
                pre.model_name if pre else None,
                pre.model_version if pre else None,
                post.model_name if post else None,
                post.model_version if post else None,
                pre.weights_sha256 if pre else None,
                post.weights_sha256 if post else None,
            ]


def models_used(rows: list[PairRow]) -> list[Provenance]:
    """Each distinct model name, version and weights file behind the rows' figures."""
    seen: dict[tuple[str, str, str], Provenance] = {}
    for row in rows:
        for measure in row.measures:
            for source in (measure.pre_source, measure.post_source):
                if source is not None:
                    seen.setdefault((source.model_name, source.model_version, source.weights_sha256), source)
    return sorted(seen.values(), key=lambda source: (source.model_name, source.model_version))
