"""The study's pre→post measures as every export reads them: the cohort's measures table
(`webapp.analysis.cohort.cohort_measure_rows`, one row per comparison pair and measure, one query) with
the identifiers, visit dates and provenance (result id, model name, version and weights SHA-256 of
each side) flattened into columns. Deleted subjects, visits and photos are not in it (`alive()`).
"""

from collections.abc import Iterator
from dataclasses import dataclass

from webapp.analysis.cohort import MeasureRow, cohort_measure_rows
from webapp.studies.models import AnalysisKind, Study


def export_rows(
    study: Study, *, subject_id: int | None = None, comparison_id: int | None = None
) -> list[MeasureRow]:
    """The measures table of the study, or of one subject or comparison."""
    rows = cohort_measure_rows(study)
    if subject_id is not None:
        rows = [row for row in rows if row.subject_id == subject_id]
    if comparison_id is not None:
        rows = [row for row in rows if row.comparison_id == comparison_id]
    return rows


def measure_kind(key: str) -> str:
    """The analysis whose result a measure is read from (`ml.measures.catalogue` key families)."""
    if key.startswith("normality_"):
        return AnalysisKind.NORMALITY
    if key.startswith("wrinkle_"):
        return AnalysisKind.WRINKLES
    if key.startswith("zone_area:"):
        return AnalysisKind.ZONES
    return AnalysisKind.LANDMARKS


@dataclass(frozen=True)
class Provenance:
    """Which result gave a figure, and the model that computed it."""

    result_id: int | None
    model_name: str
    model_version: str
    weights_sha256: str


def source(row: MeasureRow, side: str) -> Provenance | None:
    found = (row.sources.get(side) or {}).get(measure_kind(row.measure))
    if not found:
        return None
    return Provenance(
        found.get("result"), found.get("model", ""), found.get("version", ""), found.get("weights_sha256", "")
    )


# Who and which photos a row is about, and whether the pair counts: shared by the long and the wide tables.
PAIR_IDENTITY_COLUMNS = [
    "subject_id",
    "subject_code",
    "arm",
    "sex",
    "age_band",
    "comparison_id",
    "pair_id",
    "view",
    "pre_visit",
    "pre_visit_date",
    "post_visit",
    "post_visit_date",
    "pre_photo_id",
    "post_photo_id",
]
PAIR_COMPARABILITY_COLUMNS = [
    "comparable",
    "accepted_by_coordinator",
    "included_in_statistics",
    "comparability_warnings",
]
MEASURE_COLUMNS = [
    "study_id",
    *PAIR_IDENTITY_COLUMNS,
    "measure",
    "measure_label",
    "group",
    "unit",
    "pre",
    "post",
    "change",
    "noise_floor",
    "change_beyond_noise_floor",
    *PAIR_COMPARABILITY_COLUMNS,
    "analysis",
    "pre_result_id",
    "pre_model_name",
    "pre_model_version",
    "pre_weights_sha256",
    "post_result_id",
    "post_model_name",
    "post_model_version",
    "post_weights_sha256",
]


def measure_records(study: Study, rows: list[MeasureRow]) -> Iterator[list]:
    """The long table of every export: one list of values per row, in MEASURE_COLUMNS order (None = empty)."""
    for row in rows:
        provenance = []
        for side in ("pre", "post"):
            found = source(row, side)
            provenance += (
                [found.result_id, found.model_name, found.model_version, found.weights_sha256]
                if found
                else [None] * 4
            )
        yield [
            study.pk,
            row.subject_id,
            row.subject_code,
            row.arm,
            row.sex,
            row.age_band,
            row.comparison_id,
            row.pair_id,
            row.view,
            row.pre_visit,
            row.pre_visit_date,
            row.post_visit,
            row.post_visit_date,
            row.pre_photo_id,
            row.post_photo_id,
            row.measure,
            row.label,
            row.group,
            row.unit,
            row.pre,
            row.post,
            row.change,
            row.noise_floor,
            row.beyond_noise,
            row.comparable,
            row.accepted,
            row.included,
            " | ".join(row.warnings),
            measure_kind(row.measure),
            *provenance,
        ]


def models_used(rows: list[MeasureRow]) -> list[Provenance]:
    """Each distinct model name, version and weights file behind the rows' figures."""
    seen: dict[tuple[str, str, str], Provenance] = {}
    pairs: set[int] = set()
    for row in rows:
        if row.pair_id in pairs:
            continue  # every row of a pair carries the pair's sources
        pairs.add(row.pair_id)
        for side in ("pre", "post"):
            for found in (row.sources.get(side) or {}).values():
                key = (found.get("model", ""), found.get("version", ""), found.get("weights_sha256", ""))
                seen.setdefault(key, Provenance(None, *key))
    return sorted(seen.values(), key=lambda provenance: (provenance.model_name, provenance.model_version))
