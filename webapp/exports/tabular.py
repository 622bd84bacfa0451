"""Tabular exports of the study's measures: CSV, an XLSX workbook, and a REDCap import with its data
dictionary. Every text cell passes through `webapp.spreadsheets.neutralise_cell`, so a label typed by
one user never runs as a formula on the machine of the one who opens the export (openpyxl, like a
spreadsheet, would store a string starting with "=" as a formula).
"""

import datetime
import hashlib
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from webapp.analysis.cohort import MeasureRow
from webapp.exports.tables import (
    MEASURE_COLUMNS,
    PAIR_COMPARABILITY_COLUMNS,
    PAIR_IDENTITY_COLUMNS,
    measure_kind,
    measure_records,
    models_used,
    source,
)
from webapp.spreadsheets import SafeCsvWriter, neutralise_cell
from webapp.studies.models import Study

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_value(value: object) -> object:
    """Numbers with up to 10 significant digits, ISO dates, yes/no for booleans, empty for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def measures_csv(study: Study, rows: list[MeasureRow]) -> str:
    """The long measures table (MEASURE_COLUMNS) as CSV text."""
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)
    writer.writerow(MEASURE_COLUMNS)
    for record in measure_records(study, rows):
        writer.writerow([csv_value(value) for value in record])
    return buffer.getvalue()


def by_pair(rows: list[MeasureRow]) -> list[list[MeasureRow]]:
    """The rows grouped per comparison pair, in table order."""
    pairs: dict[int, list[MeasureRow]] = {}
    for row in rows:
        pairs.setdefault(row.pair_id, []).append(row)
    return list(pairs.values())


@dataclass(frozen=True)
class ExportContext:
    """Who exported what and when, for the workbook's About sheet."""

    study: Study
    exported_by: str
    exported_at: datetime.datetime
    options: dict


def _xlsx_value(value: object) -> object:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None)
    return neutralise_cell(value)


PAIR_COLUMNS = [*PAIR_IDENTITY_COLUMNS, *PAIR_COMPARABILITY_COLUMNS]
PROVENANCE_COLUMNS = [
    "pair_id",
    "subject_code",
    "side",
    "photo_id",
    "analysis",
    "result_id",
    "model_name",
    "model_version",
    "weights_sha256",
]


def _pair_fixed(first: MeasureRow) -> list:
    return [
        first.subject_id,
        first.subject_code,
        first.arm,
        first.sex,
        first.age_band,
        first.comparison_id,
        first.pair_id,
        first.view,
        first.pre_visit,
        first.pre_visit_date,
        first.post_visit,
        first.post_visit_date,
        first.pre_photo_id,
        first.post_photo_id,
        first.comparable,
        first.accepted,
        first.included,
        " | ".join(first.warnings),
    ]


def measures_xlsx(rows: list[MeasureRow], context: ExportContext) -> bytes:
    """A workbook for analysis in a spreadsheet, wide where the CSV is long (a third of the cells):

    * Pairs: one row per comparison pair (subject, comparison, view) with its ids, visit dates and
      comparability, then the pre, post and change of every measure;
    * Measures: each measure's key, label, group, unit and noise floor;
    * Provenance: per pair, side and analysis the result id, model name, version and weights SHA-256;
    * Models: every distinct model version and weights file behind a figure; About: who, when, options.
    """
    workbook = Workbook(write_only=True)
    bold = Font(bold=True)

    def sheet(title: str, header: list[str], records: Iterable[list]) -> None:
        worksheet = workbook.create_sheet(title)
        worksheet.freeze_panes = "A2"
        cells = []
        for name in header:
            cell = WriteOnlyCell(worksheet, value=name)
            cell.font = bold
            cells.append(cell)
        worksheet.append(cells)
        for record in records:
            worksheet.append([_xlsx_value(value) for value in record])

    measures: dict[str, MeasureRow] = {}
    for row in rows:
        measures.setdefault(row.measure, row)
    keys = list(measures)
    pairs = by_pair(rows)

    def pair_record(pair: list[MeasureRow]) -> list:
        values = {row.measure: row for row in pair}
        record = _pair_fixed(pair[0])
        for key in keys:
            row = values.get(key)
            record += [row.pre, row.post, row.change] if row is not None else [None, None, None]
        return record

    header = PAIR_COLUMNS + [f"{key} {part}" for key in keys for part in ("pre", "post", "change")]
    sheet("Pairs", header, (pair_record(pair) for pair in pairs))
    sheet(
        "Measures",
        ["measure", "label", "group", "unit", "noise_floor"],
        ([key, row.label, row.group, row.unit, row.noise_floor] for key, row in measures.items()),
    )

    def provenance(pair: list[MeasureRow]) -> Iterable[list]:
        first = pair[0]
        for side, photo_id in (("pre", first.pre_photo_id), ("post", first.post_photo_id)):
            for kind, found in sorted((first.sources.get(side) or {}).items()):
                yield [
                    first.pair_id,
                    first.subject_code,
                    side,
                    photo_id,
                    kind,
                    found.get("result"),
                    found.get("model"),
                    found.get("version"),
                    found.get("weights_sha256"),
                ]

    sheet("Provenance", PROVENANCE_COLUMNS, (record for pair in pairs for record in provenance(pair)))
    sheet(
        "Models",
        ["model_name", "model_version", "weights_sha256"],
        ([source.model_name, source.model_version, source.weights_sha256] for source in models_used(rows)),
    )
    sheet(
        "About",
        ["field", "value"],
        [
            ["study", context.study.name],
            ["study_id", context.study.pk],
            ["exported_by", context.exported_by],
            ["exported_at_utc", context.exported_at],
            ["options", ", ".join(f"{key}={value}" for key, value in sorted(context.options.items()))],
            ["zones_of_interest", " ".join(context.study.zones_of_interest)],
            ["change", "post − pre, in the measure's unit (percentage points for % measures)"],
            ["noise_floor", "the measure's repeatability coefficient; empty where not measured"],
        ],
    )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- REDCap -----------------------------------------------------------------------------------------

REDCAP_FORM = "facet_measures"
REDCAP_DICTIONARY_COLUMNS = [
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
]
# REDCap accepts lower-case letters, digits and underscores, starting with a letter; it advises at
# most 26 characters so that names survive exports to SAS and Stata.
REDCAP_NAME_LENGTH = 26
_REDCAP_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SUFFIXES = {"pre": "_pre", "post": "_post", "change": "_chg"}


@dataclass(frozen=True)
class RedcapField:
    name: str
    field_type: str
    label: str
    validation: str = ""
    identifier: bool = False
    note: str = ""


def redcap_name(key: str, suffix: str = "") -> str:
    """A valid REDCap variable name for `key` + `suffix`, at most REDCAP_NAME_LENGTH characters; a name
    that would be longer keeps its start and a short hash of the whole, so it stays unique."""
    base = re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")
    if not base or not base[0].isalpha():
        base = "m_" + base
    room = REDCAP_NAME_LENGTH - len(suffix)
    if len(base) > room:
        digest = hashlib.sha256(key.encode()).hexdigest()[:5]
        base = base[: room - 6].rstrip("_") + "_" + digest
    return base + suffix


def redcap_name_is_valid(name: str) -> bool:
    return bool(_REDCAP_NAME.match(name)) and len(name) <= REDCAP_NAME_LENGTH and not name.endswith("_")


_FIXED_FIELDS = [
    RedcapField("record_id", "text", "Record (subject code, comparison and view)"),
    RedcapField("subject_code", "text", "Subject code (pseudonymous)"),
    RedcapField("arm", "text", "Treatment arm"),
    RedcapField("sex", "text", "Sex"),
    RedcapField("age_band", "text", "Age band"),
    RedcapField("comparison_id", "text", "Facet comparison id", validation="integer"),
    RedcapField("view", "text", "Photo view"),
    RedcapField("pre_visit", "text", "Pre visit"),
    RedcapField("pre_visit_date", "text", "Pre visit date", validation="date_ymd", identifier=True),
    RedcapField("post_visit", "text", "Post visit"),
    RedcapField("post_visit_date", "text", "Post visit date", validation="date_ymd", identifier=True),
    RedcapField("pre_photo_id", "text", "Facet photo id, pre", validation="integer"),
    RedcapField("post_photo_id", "text", "Facet photo id, post", validation="integer"),
    RedcapField(
        "included", "yesno", "Included in the cohort statistics (comparable, or accepted by a coordinator)"
    ),
]


def redcap_fields(rows: list[MeasureRow]) -> list[RedcapField]:
    """Every field of the REDCap form, in column order: the fixed ones, then pre, post and change of
    each measure, then the model name, version and weights SHA-256 of each analysis (post photo)."""
    fields = list(_FIXED_FIELDS)
    measures: dict[str, tuple[str, str]] = {}
    kinds: list[str] = []
    for row in rows:
        measures.setdefault(row.measure, (row.label, row.unit))
        kind = measure_kind(row.measure)
        if kind not in kinds:
            kinds.append(kind)
    for key, (label, unit) in measures.items():
        for side, suffix in _SUFFIXES.items():
            fields.append(
                RedcapField(
                    redcap_name(key, suffix), "text", f"{label}, {side}", validation="number", note=unit
                )
            )
    for kind in kinds:
        fields += [
            RedcapField(redcap_name(kind, "_model"), "text", f"{kind} model name (post photo)"),
            RedcapField(redcap_name(kind, "_version"), "text", f"{kind} model version (post photo)"),
            RedcapField(redcap_name(kind, "_sha256"), "text", f"{kind} weights SHA-256 (post photo)"),
        ]
    names = [field.name for field in fields]
    if len(set(names)) != len(names):
        raise ValueError("Two REDCap variable names collide; rename a measure key.")
    return fields


def redcap_dictionary_csv(fields: list[RedcapField]) -> str:
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)
    writer.writerow(REDCAP_DICTIONARY_COLUMNS)
    for field in fields:
        row = dict.fromkeys(REDCAP_DICTIONARY_COLUMNS, "")
        row["Variable / Field Name"] = field.name
        row["Form Name"] = REDCAP_FORM
        row["Field Type"] = field.field_type
        row["Field Label"] = field.label
        row["Field Note"] = field.note
        row["Text Validation Type OR Show Slider Number"] = field.validation
        row["Identifier?"] = "y" if field.identifier else ""
        writer.writerow(row.values())
    return buffer.getvalue()


def _redcap_number(value: float | None) -> str:
    return "" if value is None else f"{value:.10g}"


def redcap_records_csv(rows: list[MeasureRow], fields: list[RedcapField]) -> str:
    """One record per comparison pair (record_id `CODE-c<comparison>-<view>`), in the columns of
    `fields`; dates as YYYY-MM-DD, numbers with a full stop, yes/no as 1/0, empty where there is no value."""
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)
    names = [field.name for field in fields]
    writer.writerow(names)
    for pair in by_pair(rows):
        first = pair[0]
        values = {
            "record_id": f"{first.subject_code}-c{first.comparison_id}-{first.view}",
            "subject_code": first.subject_code,
            "arm": first.arm,
            "sex": first.sex,
            "age_band": first.age_band,
            "comparison_id": first.comparison_id,
            "view": first.view,
            "pre_visit": first.pre_visit,
            "pre_visit_date": first.pre_visit_date.isoformat() if first.pre_visit_date else "",
            "post_visit": first.post_visit,
            "post_visit_date": first.post_visit_date.isoformat() if first.post_visit_date else "",
            "pre_photo_id": first.pre_photo_id,
            "post_photo_id": first.post_photo_id,
            "included": "1" if first.included else "0",
        }
        for row in pair:
            for side, suffix in _SUFFIXES.items():
                values[redcap_name(row.measure, suffix)] = _redcap_number(getattr(row, side))
            found = source(row, "post") or source(row, "pre")
            if found is not None:
                kind = measure_kind(row.measure)
                values[redcap_name(kind, "_model")] = found.model_name
                values[redcap_name(kind, "_version")] = found.model_version
                values[redcap_name(kind, "_sha256")] = found.weights_sha256
        writer.writerow([values.get(name, "") for name in names])
    return buffer.getvalue()
