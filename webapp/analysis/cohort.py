"""Reads for the cohort: the measures table (one row per comparison pair and measure) that the cohort
page, its statistics, charts, the API and the exports all read, in a bounded number of queries."""

from __future__ import annotations

import datetime
import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache as cache_for_process

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import JSONField, QuerySet
from django.db.models.expressions import RawSQL

from ml.measures.catalogue import definition, group_keys, noise_floors
from ml.measures.statistics import ArmComparison, ChangeSummary, between_arms, summarise
from webapp.analysis.models import ComparisonPair
from webapp.studies.models import Study


@dataclass(frozen=True)
class CohortFilters:
    """Which subjects the cohort covers: by arm, sex and age band (empty = all)."""

    arm: str = ""
    sex: str = ""
    age_band: str = ""

    def apply(self, pairs: QuerySet[ComparisonPair]) -> QuerySet[ComparisonPair]:
        for name in ("arm", "sex", "age_band"):
            value = getattr(self, name)
            if value:
                pairs = pairs.filter(**{f"comparison__subject__{name}": value})
        return pairs


@dataclass
class MeasureRow:
    """One measure of one comparison pair (one subject, two visits, one view). Values are in the
    measure's unit: IPD/IPD² for landmark measures, mm/mm² when the study sets its IPD in mm."""

    subject_id: int
    subject_code: str
    arm: str
    sex: str
    age_band: str
    comparison_id: int
    pair_id: int
    pre_visit: str
    pre_visit_date: datetime.date | None
    post_visit: str
    post_visit_date: datetime.date | None
    view: str
    pre_photo_id: int
    post_photo_id: int
    measure: str
    label: str
    group: str
    unit: str
    pre: float
    post: float
    noise_floor: float | None
    comparable: bool
    accepted: bool
    included: bool
    warnings: list[str] = field(default_factory=list)
    # Per side and analysis kind: {"result", "model", "version", "weights_sha256"} of the result read.
    sources: dict = field(default_factory=dict)

    @property
    def change(self) -> float:
        return self.post - self.pre

    @property
    def beyond_noise(self) -> bool | None:
        """Whether the change exceeds the measure's repeatability coefficient (None without one)."""
        return None if self.noise_floor is None else abs(self.change) > self.noise_floor


def study_pairs(study: Study, filters: CohortFilters | None = None) -> QuerySet[ComparisonPair]:
    """The study's alive comparison pairs with their subject and visits, in subject order."""
    pairs = (
        ComparisonPair.objects.alive()
        .filter(comparison__subject__study=study)
        .select_related("comparison__subject", "comparison__pre_visit", "comparison__post_visit")
        .order_by("comparison__subject__code", "comparison__created_at", "view")
    )
    return (filters or CohortFilters()).apply(pairs)


PAIR_FIELDS = (
    "pk",
    "view",
    "pre_photo_id",
    "post_photo_id",
    "measures",
    "sources",
    "warnings",
    "assessed_at",
    "accepted_at",
    "comparison_id",
    "comparison__subject_id",
    "comparison__subject__code",
    "comparison__subject__arm",
    "comparison__subject__sex",
    "comparison__subject__age_band",
    "comparison__pre_visit__label",
    "comparison__pre_visit__date",
    "comparison__post_visit__label",
    "comparison__post_visit__date",
)


def _measures_of(keys: tuple[str, ...]) -> RawSQL:
    """The pair's ``measures`` object narrowed to ``keys``, in PostgreSQL ({} when none is there)."""
    table = ComparisonPair._meta.db_table
    return RawSQL(
        f"SELECT coalesce(jsonb_object_agg(key, value), '{{}}'::jsonb) FROM jsonb_each({table}.measures)"
        " WHERE key = ANY(%s)",
        (list(keys),),
        output_field=JSONField(),
    )


def _pair_values(
    study: Study,
    filters: CohortFilters | None,
    *,
    group: str | None,
    view: str | None,
    with_sources: bool,
) -> QuerySet:
    """The study's alive pairs (of ``view`` when given) as plain values; with ``group``, their
    ``group_measures`` hold only that group's measures."""
    pairs = study_pairs(study, filters)
    if view is not None:
        pairs = pairs.filter(view=view)
    fields = PAIR_FIELDS if with_sources else tuple(name for name in PAIR_FIELDS if name != "sources")
    if group is not None:
        # Only the group's values leave the database: decoding every measure of every pair dominated.
        pairs = pairs.annotate(group_measures=_measures_of(group_keys(group)))
        fields = tuple("group_measures" if name == "measures" else name for name in fields)
    return pairs.values(*fields)


def cohort_measure_rows(
    study: Study,
    filters: CohortFilters | None = None,
    *,
    included_only: bool = False,
    group: str | None = None,
    view: str | None = None,
    with_sources: bool = True,
) -> list[MeasureRow]:
    """The measures table of the study: one row per alive comparison pair and measure measured on both
    photos, in subject, comparison, view and measure order; only the measures of ``group`` and the
    pairs of ``view`` when given; ``with_sources=False`` leaves out the results' provenance (the pages
    do not show it). One query, read as plain values (no model instances: the table may hold tens of
    thousands of rows)."""
    floors = noise_floors()
    ipd_mm = study.ipd_mm
    rows = []
    for values in _pair_values(study, filters, group=group, view=view, with_sources=with_sources):
        measures = values["group_measures"] if group is not None else values["measures"]
        warnings = values["warnings"]
        assessed = values["assessed_at"] is not None
        accepted = values["accepted_at"] is not None
        included = assessed and (not warnings or accepted)
        if included_only and not included:
            continue
        for key in sorted(measures):
            try:
                measure = definition(key)
            except KeyError:
                continue  # a measure of an older code version; not part of the catalogue any more
            if group is not None and measure.group != group:
                continue
            pre, post = measures[key]
            floor = floors.get(key)
            if ipd_mm is not None:
                pre, post = measure.in_mm(pre, ipd_mm), measure.in_mm(post, ipd_mm)
                floor = None if floor is None else measure.in_mm(floor, ipd_mm)
            rows.append(
                MeasureRow(
                    subject_id=values["comparison__subject_id"],
                    subject_code=values["comparison__subject__code"],
                    arm=values["comparison__subject__arm"],
                    sex=values["comparison__subject__sex"],
                    age_band=values["comparison__subject__age_band"],
                    comparison_id=values["comparison_id"],
                    pair_id=values["pk"],
                    pre_visit=values["comparison__pre_visit__label"],
                    pre_visit_date=values["comparison__pre_visit__date"],
                    post_visit=values["comparison__post_visit__label"],
                    post_visit_date=values["comparison__post_visit__date"],
                    view=values["view"],
                    pre_photo_id=values["pre_photo_id"],
                    post_photo_id=values["post_photo_id"],
                    measure=key,
                    label=measure.label,
                    group=measure.group,
                    unit=measure.unit_label(ipd_mm),
                    pre=pre,
                    post=post,
                    noise_floor=floor,
                    comparable=assessed and not warnings,
                    accepted=accepted,
                    included=included,
                    warnings=list(warnings),
                    sources=values.get("sources", {}),
                )
            )
    return rows


# Groups of measures, in the order the cohort page offers them; one group is one family of tests.
MEASURE_GROUPS = {
    "lips": "Lips",
    "commissures": "Commissures",
    "brows": "Brows",
    "eyes": "Eyes (palpebral fissures)",
    "symmetry": "Symmetry",
    "normality": "Normality",
    "wrinkles": "Wrinkles per zone",
    "wrinkle_types": "Wrinkles per line type",
    "zones": "Zone areas",
}
STATISTICS_CACHE_SECONDS = 3600


def one_row_per_subject(rows: list[MeasureRow], view: str) -> dict[str, list[MeasureRow]]:
    """The rows the statistics use, by measure: included pairs of ``view``, and of each subject only its
    latest comparison (subjects are the independent units)."""
    latest: dict[tuple[int, str], MeasureRow] = {}
    for row in rows:
        if row.view != view or not row.included:
            continue
        key = (row.subject_id, row.measure)
        if key not in latest or row.comparison_id > latest[key].comparison_id:
            latest[key] = row
    by_measure: dict[str, list[MeasureRow]] = defaultdict(list)
    for row in latest.values():
        by_measure[row.measure].append(row)
    return by_measure


@dataclass
class MeasureStatistics:
    """The cohort's change of one measure, with the tests between arms."""

    measure: str
    label: str
    group: str
    unit: str
    noise_floor: float | None
    summary: ChangeSummary
    beyond_noise: int
    arms: list[ArmComparison]
    changes_by_arm: dict[str, list[float]]


def _statistics_fingerprint(choices: list[str], rows: list[MeasureRow]) -> str:
    """A digest of everything the statistics depend on: the choices, and per row its measure, subject,
    arm and exact values (as float64 bytes: hashing them is a third of the cost of their JSON)."""
    digest = hashlib.sha256(
        json.dumps(choices + [[row.measure, row.subject_id, row.arm] for row in rows]).encode()
    )
    values = [(row.pre, row.post, math.nan if row.noise_floor is None else row.noise_floor) for row in rows]
    digest.update(np.array(values, dtype=np.float64).tobytes())
    return digest.hexdigest()


def cohort_statistics(
    rows: list[MeasureRow], *, group: str, view: str = "frontal", method: str = "holm"
) -> list[MeasureStatistics]:
    """Statistics of every measure of ``group`` (one family: p-values adjusted across its measures by
    ``method``, Holm or ``fdr_bh``), computed from ``rows`` (:func:`cohort_measure_rows`) and cached
    by their content."""
    chosen = {
        measure: members
        for measure, members in one_row_per_subject(rows, view).items()
        if members[0].group == group
    }
    fingerprint = _statistics_fingerprint(
        [group, view, method],
        [row for members in chosen.values() for row in sorted(members, key=lambda r: r.subject_id)],
    )
    cache_key = f"cohort-statistics:{fingerprint}"
    cached = cache.get(cache_key)
    if cached is not None:
        return cached
    found = _statistics(chosen, group=group, method=method)
    cache.set(cache_key, found, STATISTICS_CACHE_SECONDS)
    return found


def _statistics(chosen: dict[str, list[MeasureRow]], *, group: str, method: str) -> list[MeasureStatistics]:
    """The statistics of each measure's one-row-per-subject ``chosen`` rows (:func:`one_row_per_subject`)."""
    summaries = summarise(
        {
            measure: ([row.pre for row in members], [row.post for row in members])
            for measure, members in sorted(chosen.items())
        },
        method,
    )
    found = []
    for measure, summary in summaries.items():
        members = chosen[measure]
        changes_by_arm: dict[str, list[float]] = defaultdict(list)
        for row in members:
            changes_by_arm[row.arm].append(row.change)
        first = members[0]
        found.append(
            MeasureStatistics(
                measure=measure,
                label=first.label,
                group=group,
                unit=first.unit,
                noise_floor=first.noise_floor,
                summary=summary,
                beyond_noise=sum(1 for row in members if row.beyond_noise),
                arms=between_arms(changes_by_arm, method) if len(changes_by_arm) > 1 else [],
                changes_by_arm=dict(sorted(changes_by_arm.items())),
            )
        )
    return found


@dataclass
class CohortSummary:
    """What the cohort page and the statistics API show of one group of measures: the statistics, and per
    measure each subject's (code, arm, pre, post) in them (the pre→post chart)."""

    statistics: list[MeasureStatistics]
    subjects_by_measure: dict[str, list[tuple[str, str, float, float]]]


@cache_for_process
def _catalogue_digest(group: str) -> str:
    """The measure definitions the summary depends on besides the stored values: the group's keys and
    the noise floors (a new code version may change either)."""
    definitions = json.dumps([group_keys(group), noise_floors()], sort_keys=True)
    return hashlib.sha256(definitions.encode()).hexdigest()


def _content_digest(pairs: QuerySet) -> str:
    """A digest, computed by PostgreSQL in one query, of every value of the ``pairs`` rows: their
    measures, comparability, acceptance, subject (code, arm, sex, age band) and visits. Any write to any
    of them (a new result, an accepted or excluded pair, another photo chosen, a changed arm, a deleted
    subject or photo) changes it, whichever code path made the write."""
    sql, params = pairs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT md5(coalesce(string_agg(pair::text, '|'), '')) FROM ({sql}) AS pair", params)
        return cursor.fetchone()[0]


def cohort_summary(
    study: Study, filters: CohortFilters | None = None, *, group: str, view: str, method: str = "holm"
) -> CohortSummary:
    """The statistics of ``group`` over the pairs of ``view`` that ``filters`` select, with the data of
    their charts, cached by the content of those pairs: a page view reads one digest of the pairs'
    values from PostgreSQL and, while nothing changed, neither builds the measure rows nor tests."""
    key_parts = [study.pk, study.ipd_mm, group, view, method, _catalogue_digest(group)]
    # Every measure of the pairs, not only the group's: narrowing in SQL costs more than it saves here.
    digest = _content_digest(_pair_values(study, filters, group=None, view=view, with_sources=False))
    cache_key = "cohort-summary:" + hashlib.sha256(json.dumps([*key_parts, digest]).encode()).hexdigest()
    cached = cache.get(cache_key)
    if cached is not None:
        return cached
    rows = cohort_measure_rows(study, filters, group=group, view=view, with_sources=False)
    chosen = {
        measure: members
        for measure, members in one_row_per_subject(rows, view).items()
        if members[0].group == group
    }
    subjects_by_measure: dict[str, list[tuple[str, str, float, float]]] = defaultdict(list)
    for row in rows:
        if row.included:
            subjects_by_measure[row.measure].append((row.subject_code, row.arm, row.pre, row.post))
    summary = CohortSummary(
        statistics=_statistics(chosen, group=group, method=method),
        subjects_by_measure=dict(subjects_by_measure),
    )
    cache.set(cache_key, summary, STATISTICS_CACHE_SECONDS)
    return summary
