"""Before/after reports of one comparison (a printable page and a PDF) and the cohort report (a PDF).

The subject report shows, per photo pair of the comparison, the pre photo and the post photo registered
onto it (the landmark similarity transform of the comparison page), both with the landmarks and the
outlines of the study's zones of interest drawn over them, the pair's comparability figures and
warnings, and every measure with its change and noise floor. PDFs are drawn with ReportLab; charts of
the cohort report with Matplotlib (Agg), each with a sentence that says what it shows.
"""

import base64
import datetime
import io
from dataclasses import dataclass, field

import cv2
import numpy as np
from django.utils import timezone
from PIL import Image, ImageDraw

from ml.core.alignment import apply_transform, similarity_transform
from ml.core.subject import subject_face
from webapp.analysis.cohort import (
    MEASURE_GROUPS,
    MeasureRow,
    MeasureStatistics,
    cohort_measure_rows,
    cohort_statistics,
    study_pairs,
)
from webapp.analysis.models import ComparisonPair
from webapp.analysis.normality_maps import (
    MapsChart,
    NormalityMaps,
    cohort_normality_maps,
    normality_maps_charts,
)
from webapp.analysis.pairs import latest_results
from webapp.exports.services import photo_pixels
from webapp.exports.tables import Provenance, models_used
from webapp.studies.models import AnalysisKind, Comparison, PhotoView, Study

# Longest side of the report's photos: sharp on paper, light in a PDF.
REPORT_IMAGE_SIDE = 900
LANDMARK_COLOUR = (0, 200, 255)
ZONE_COLOUR = (255, 210, 0)


@dataclass
class ReportPair:
    """One view of the comparison: its two images (JPEG bytes with overlays) and its measures."""

    view: str
    view_label: str
    pre_photo_id: int
    post_photo_id: int
    pre_image: bytes | None = None
    post_image: bytes | None = None
    registration: dict[str, float] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rows: list[MeasureRow] = field(default_factory=list)

    def data_uri(self, side: str) -> str:
        image = self.pre_image if side == "pre" else self.post_image
        return "data:image/jpeg;base64," + base64.b64encode(image).decode() if image else ""

    @property
    def pre_uri(self) -> str:
        return self.data_uri("pre")

    @property
    def post_uri(self) -> str:
        return self.data_uri("post")


@dataclass
class SubjectReport:
    study_name: str
    subject_code: str
    arm: str
    comparison_id: int
    pre_visit: str
    pre_visit_date: datetime.date | None
    post_visit: str
    post_visit_date: datetime.date | None
    zones_of_interest: list[str]
    generated_at: datetime.datetime
    pairs: list[ReportPair]
    models: list[Provenance]


def _subject_points(result) -> np.ndarray | None:
    face = subject_face((result.data.get("faces") or []) if result is not None else [])
    return None if face is None else np.asarray(face["landmarks"], dtype=np.float64)


def _zone_outlines(result, zones: list[str]) -> list[np.ndarray]:
    """Outlines (N×2 pixel arrays) of the zones of interest in a zones result."""
    if result is None:
        return []
    wanted = set(zones)
    outlines = []
    for zone in result.data.get("zones", []):
        if zone.get("abbreviation") in wanted:
            for flat in zone.get("outlines", []):
                points = np.asarray(flat, dtype=np.float64).reshape(-1, 2)
                if len(points) >= 3:
                    outlines.append(points)
    return outlines


def _draw(pixels: np.ndarray, landmarks: np.ndarray | None, outlines: list[np.ndarray]) -> bytes:
    """The image downscaled to REPORT_IMAGE_SIDE with the overlays drawn, as JPEG bytes."""
    height, width = pixels.shape[:2]
    scale = min(1.0, REPORT_IMAGE_SIDE / max(height, width))
    image = Image.fromarray(pixels).resize(
        (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.LANCZOS
    )
    draw = ImageDraw.Draw(image)
    line = max(1, round(2 * max(image.size) / 900))
    for outline in outlines:
        points = [(float(x * scale), float(y * scale)) for x, y in outline]
        draw.line([*points, points[0]], fill=ZONE_COLOUR, width=line)
    if landmarks is not None:
        radius = line + 1
        for x, y in landmarks * scale:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=LANDMARK_COLOUR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def _render_pair(pair: ReportPair, model: ComparisonPair, zones: list[str]) -> None:
    """Draw both images; the post photo is mapped onto the pre photo by the landmark similarity
    transform, so the two faces line up as on the comparison page."""
    results = latest_results([model.pre_photo_id, model.post_photo_id])
    found = {
        side: {kind: results.get((photo_id, kind)) for kind in AnalysisKind.values}
        for side, photo_id in (("pre", model.pre_photo_id), ("post", model.post_photo_id))
    }
    pre_pixels, post_pixels = photo_pixels(model.pre_photo), photo_pixels(model.post_photo)
    pre_points = _subject_points(found["pre"][AnalysisKind.LANDMARKS])
    post_points = _subject_points(found["post"][AnalysisKind.LANDMARKS])
    pre_outlines = _zone_outlines(found["pre"][AnalysisKind.ZONES], zones)
    post_outlines = _zone_outlines(found["post"][AnalysisKind.ZONES], zones)
    if pre_points is not None and post_points is not None:
        matrix = similarity_transform(post_points, pre_points)
        height, width = pre_pixels.shape[:2]
        post_pixels = cv2.warpAffine(post_pixels, matrix, (width, height), flags=cv2.INTER_LINEAR)
        post_points = apply_transform(matrix, post_points)
        post_outlines = [apply_transform(matrix, outline) for outline in post_outlines]
        pair.registration = {
            "scale": float(np.hypot(matrix[0, 0], matrix[1, 0])),
            "rotation_degrees": float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))),
            "residual_px": float(np.linalg.norm(post_points - pre_points, axis=1).mean()),
        }
    else:
        missing = [side for side, points in (("pre", pre_points), ("post", post_points)) if points is None]
        pair.problems.append(
            f"No face landmarks on the {' and '.join(missing)} photo: the photos are shown unregistered."
        )
    pair.pre_image = _draw(pre_pixels, pre_points, pre_outlines)
    pair.post_image = _draw(post_pixels, post_points, post_outlines)


def subject_report(comparison: Comparison) -> SubjectReport:
    """The before/after report of one comparison: every alive photo pair, drawn and measured."""
    study = comparison.subject.study
    rows = [row for row in cohort_measure_rows(study) if row.comparison_id == comparison.pk]
    labels = dict(PhotoView.choices)
    pairs = []
    models = (
        ComparisonPair.objects.alive()
        .filter(comparison=comparison)
        .select_related("pre_photo", "post_photo")
        .order_by("view")
    )
    for model in models:
        pair = ReportPair(
            view=model.view,
            view_label=labels.get(model.view, model.view),
            pre_photo_id=model.pre_photo_id,
            post_photo_id=model.post_photo_id,
            figures=dict(model.figures),
            warnings=list(model.warnings),
            rows=[row for row in rows if row.pair_id == model.pk],
        )
        _render_pair(pair, model, study.zones_of_interest)
        pairs.append(pair)
    return SubjectReport(
        study_name=study.name,
        subject_code=comparison.subject.code,
        arm=getattr(comparison.subject, "arm", ""),
        comparison_id=comparison.pk,
        pre_visit=comparison.pre_visit.label,
        pre_visit_date=comparison.pre_visit.date,
        post_visit=comparison.post_visit.label,
        post_visit_date=comparison.post_visit.date,
        zones_of_interest=list(study.zones_of_interest),
        generated_at=timezone.now(),
        pairs=pairs,
        models=models_used(rows),
    )


# --- PDF ------------------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _beyond(row: MeasureRow) -> str:
    beyond = row.beyond_noise
    return "—" if beyond is None else ("yes" if beyond else "no")


def _pdf_document(buffer: io.BytesIO, title: str):
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    return SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=title,
        author="Facet",
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
    )


def _table(data: list[list], widths: list[float] | None = None, font_size: float = 7.5):
    from reportlab.lib import colors
    from reportlab.platypus import Table, TableStyle

    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), "Helvetica", font_size),
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", font_size),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef4")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#b0b8c0")),
                ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _image_flowable(jpeg: bytes, width: float):
    from reportlab.platypus import Image as PdfImage

    with Image.open(io.BytesIO(jpeg)) as image:
        aspect = image.height / image.width
    return PdfImage(io.BytesIO(jpeg), width=width, height=width * aspect)


def subject_report_pdf(report: SubjectReport) -> bytes:
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer, Table
    from reportlab.platypus.flowables import KeepTogether

    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    document = _pdf_document(buffer, f"Before/after report {report.subject_code}")
    story = [
        Paragraph(f"Before/after report · subject {report.subject_code}", styles["Title"]),
        Paragraph(
            f"Study {report.study_name} · comparison {report.comparison_id}"
            + (f" · arm {report.arm}" if report.arm else ""),
            styles["Normal"],
        ),
        Paragraph(
            f"Pre: {report.pre_visit} ({report.pre_visit_date or 'no date'}) → "
            f"post: {report.post_visit} ({report.post_visit_date or 'no date'})",
            styles["Normal"],
        ),
        Paragraph(
            "Change = post − pre in the measure's unit. Noise floor: the repeatability coefficient of the "
            "measure (test–retest); a change within it is not distinguishable from re-photographing the "
            "same face. Landmarks (blue dots) and zones of interest (yellow) are drawn over the photos; the "
            "post photo is registered onto the pre photo.",
            styles["Italic"],
        ),
        Spacer(1, 4 * mm),
    ]
    if not report.pairs:
        story.append(
            Paragraph(
                "This comparison has no photo pair (no view photographed at both visits).", styles["Normal"]
            )
        )
    half = (document.width - 4 * mm) / 2
    for pair in report.pairs:
        story.append(
            Paragraph(
                f"{pair.view_label} view (photos {pair.pre_photo_id} → {pair.post_photo_id})",
                styles["Heading2"],
            )
        )
        images = [
            _image_flowable(image, half) if image else "" for image in (pair.pre_image, pair.post_image)
        ]
        story.append(
            KeepTogether([Table([["Pre", "Post (registered)"], images], colWidths=[half + 2 * mm] * 2)])
        )
        if pair.registration:
            registration = pair.registration
            story.append(
                Paragraph(
                    f"Registration: scale {registration['scale']:.3f}, rotation "
                    f"{registration['rotation_degrees']:.1f}°, mean landmark residual "
                    f"{registration['residual_px']:.1f} px.",
                    styles["Normal"],
                )
            )
        for note in pair.problems + [f"Comparability warning: {warning}" for warning in pair.warnings]:
            story.append(Paragraph(note, styles["Normal"]))
        data = [["Measure", "Unit", "Pre", "Post", "Change", "Noise floor", "Beyond noise"]]
        for row in pair.rows:
            data.append(
                [
                    Paragraph(row.label, styles["BodyText"]),
                    row.unit,
                    _number(row.pre),
                    _number(row.post),
                    _number(row.change),
                    _number(row.noise_floor),
                    _beyond(row),
                ]
            )
        if len(data) == 1:
            story.append(
                Paragraph("No measure yet: the analyses of these photos have not finished.", styles["Normal"])
            )
        else:
            widths = [68 * mm, 16 * mm, 18 * mm, 18 * mm, 18 * mm, 20 * mm, 18 * mm]
            story.append(_table(data, widths))
        story.append(Spacer(1, 4 * mm))
    if report.models:
        story.append(Paragraph("Models", styles["Heading3"]))
        story.append(
            _table(
                [["Model", "Version", "Weights SHA-256"]]
                + [
                    [model.model_name, model.model_version, model.weights_sha256 or "—"]
                    for model in report.models
                ],
                [45 * mm, 35 * mm, 100 * mm],
                font_size=6.5,
            )
        )
    story.append(
        Paragraph(
            f"Generated by Facet on {report.generated_at:%Y-%m-%d %H:%M} UTC. Pseudonymous subject code "
            "only; "
            "contains identifiable photographs: handle as patient data.",
            styles["Italic"],
        )
    )
    document.build(story)
    return buffer.getvalue()


# --- cohort report --------------------------------------------------------------------------------


@dataclass
class Chart:
    """A PNG chart and the sentence that says what it shows (its text alternative)."""

    kind: str
    title: str
    png: bytes
    description: str


@dataclass
class GroupReport:
    label: str
    statistics: list[MeasureStatistics]
    charts: list[Chart]


@dataclass
class CohortReport:
    study_name: str
    view: str
    method: str
    generated_at: datetime.datetime
    counts: dict[str, int]
    arms: list[str]
    groups: list[GroupReport]
    normality_maps: NormalityMaps
    normality_charts: list[MapsChart]

    @property
    def statistics(self) -> list[MeasureStatistics]:
        return [entry for group in self.groups for entry in group.statistics]


def _figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    return buffer.getvalue()


def _distribution_chart(label: str, statistics: list[MeasureStatistics], arms: list[str]) -> Chart:
    """Change of every measure of a group, one row per measure: each subject's change as a dot (colour
    per arm), the mean as a bar, and the measure's noise floor as a grey band around zero."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 0.8 + 0.32 * len(statistics)))
    axes = figure.subplots()
    colours = dict(
        zip(arms, ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"), strict=False)
    )
    for index, entry in enumerate(statistics):
        if entry.noise_floor is not None:
            axes.fill_betweenx(
                [index - 0.4, index + 0.4], -entry.noise_floor, entry.noise_floor, color="#dddddd"
            )
        for arm, changes in entry.changes_by_arm.items():
            jitter = np.linspace(-0.2, 0.2, len(changes)) if len(changes) > 1 else [0.0]
            axes.scatter(
                changes, index + np.asarray(jitter), s=9, color=colours.get(arm, "#444444"), label=arm or None
            )
        if entry.summary.mean_change is not None:
            axes.plot(
                [entry.summary.mean_change] * 2, [index - 0.35, index + 0.35], color="black", linewidth=2
            )
    axes.axvline(0, color="#888888", linewidth=0.8)
    axes.set_yticks(
        range(len(statistics)), [f"{entry.label} ({entry.unit})" for entry in statistics], fontsize=7
    )
    axes.invert_yaxis()
    axes.set_xlabel("change (post − pre), in each measure's unit", fontsize=8)
    axes.tick_params(axis="x", labelsize=7)
    handles, names = axes.get_legend_handles_labels()
    unique = {name: handle for handle, name in zip(handles, names, strict=True) if name}
    if unique:
        axes.legend(unique.values(), unique.keys(), fontsize=7, title="arm", title_fontsize=7)
    largest = max(statistics, key=lambda entry: abs(entry.summary.mean_change or 0.0))
    description = (
        f"Dots: each subject's change of each {label.lower()} measure; black bar: the mean change; "
        f"grey band: the noise floor. The largest mean change is {largest.label}, "
        f"{_number(largest.summary.mean_change)} {largest.unit} (n = {largest.summary.n})."
    )
    return Chart("distribution", f"{label}: change per subject", _figure_png(figure), description)


def _slope_chart(entry: MeasureStatistics, rows: list[MeasureRow], view: str, arms: list[str]) -> Chart:
    """Each subject's pre→post line of one measure (colour per arm)."""
    from matplotlib.figure import Figure

    chosen = [row for row in rows if row.measure == entry.measure and row.view == view and row.included]
    figure = Figure(figsize=(4.0, 3.0))
    axes = figure.subplots()
    colours = dict(
        zip(arms, ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"), strict=False)
    )
    for row in chosen:
        axes.plot(
            [0, 1],
            [row.pre, row.post],
            color=colours.get(row.arm, "#444444"),
            alpha=0.6,
            marker="o",
            markersize=3,
        )
    axes.set_xticks([0, 1], ["pre", "post"])
    axes.set_ylabel(entry.unit, fontsize=8)
    axes.set_title(entry.label, fontsize=9)
    axes.tick_params(labelsize=7)
    rising = sum(row.post > row.pre for row in chosen)
    description = (
        f"Pre→post lines of {entry.label} for {len(chosen)} subjects: {rising} rose, "
        f"{len(chosen) - rising} did not; "
        f"mean {_number(entry.summary.mean_pre)} → {_number(entry.summary.mean_post)} {entry.unit}."
    )
    return Chart("slope", f"{entry.label}: pre → post per subject", _figure_png(figure), description)


def cohort_report(study: Study, *, view: str = PhotoView.FRONTAL, method: str = "holm") -> CohortReport:
    """The statistics of every measure group of the study's included pairs of `view`, with charts."""
    rows = cohort_measure_rows(study)
    pairs = list(study_pairs(study))
    groups = []
    for group, label in MEASURE_GROUPS.items():
        statistics = cohort_statistics(rows, group=group, view=view, method=method)
        if not statistics:
            continue
        arms = sorted({arm for entry in statistics for arm in entry.changes_by_arm})
        charts = [_distribution_chart(label, statistics, arms)]
        headline = max(statistics, key=lambda entry: entry.summary.n)
        charts.append(_slope_chart(headline, rows, view, arms))
        groups.append(GroupReport(label, statistics, charts))
    maps = cohort_normality_maps(study, view=view)
    return CohortReport(
        study_name=study.name,
        view=view,
        method=method,
        generated_at=timezone.now(),
        counts={
            "subjects": len({pair.comparison.subject_id for pair in pairs}),
            "pairs": len(pairs),
            "included": sum(pair.included for pair in pairs),
            "excluded": sum(not pair.included for pair in pairs),
        },
        arms=list(study.arms),
        groups=groups,
        normality_maps=maps,
        normality_charts=normality_maps_charts(maps),
    )


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _ci(interval: tuple[float, float] | None) -> str:
    return "—" if interval is None else f"[{_number(interval[0], 3)}, {_number(interval[1], 3)}]"


def cohort_report_pdf(report: CohortReport) -> bytes:
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer
    from reportlab.platypus.flowables import KeepTogether

    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    document = _pdf_document(buffer, f"Cohort report {report.study_name}")
    counts = report.counts
    chart_width = {"distribution": min(document.width, 170 * mm), "slope": 90 * mm}
    adjustment = "Holm" if report.method == "holm" else "Benjamini–Hochberg"
    story = [
        Paragraph(f"Cohort report · {report.study_name}", styles["Title"]),
        Paragraph(
            f"{counts['subjects']} subjects, {counts['pairs']} photo pairs ({report.view} view in the "
            f"statistics): {counts['included']} included, {counts['excluded']} left out (beyond a "
            "comparability limit and not accepted, or not yet assessed)."
            + (f" Arms: {', '.join(report.arms)}." if report.arms else ""),
            styles["Normal"],
        ),
        Paragraph(
            "Per measure: n subjects (each subject's latest comparison), mean and median change "
            "(post − pre) with 95 % bootstrap confidence intervals, Wilcoxon signed-rank and paired t "
            f"p-values, the Wilcoxon p adjusted across the group's measures ({adjustment}), Cohen's dz, the "
            "matched-pairs rank-biserial correlation, and how many subjects changed by more than the noise "
            "floor.",
            styles["Italic"],
        ),
        Spacer(1, 3 * mm),
    ]
    if not report.groups:
        story.append(Paragraph("No included photo pair has measures yet.", styles["Normal"]))
    for group in report.groups:
        story.append(Paragraph(group.label, styles["Heading2"]))
        data = [
            [
                "Measure",
                "Unit",
                "n",
                "Mean Δ [95 % CI]",
                "Median Δ [95 % CI]",
                "Wilcoxon p",
                "t p",
                "adj. p",
                "dz",
                "r rb",
                "> noise",
            ]
        ]
        for entry in group.statistics:
            summary = entry.summary
            data.append(
                [
                    Paragraph(entry.label, styles["BodyText"]),
                    entry.unit,
                    summary.n,
                    Paragraph(
                        f"{_number(summary.mean_change, 3)} {_ci(summary.mean_change_ci)}", styles["BodyText"]
                    ),
                    Paragraph(
                        f"{_number(summary.median_change, 3)} {_ci(summary.median_change_ci)}",
                        styles["BodyText"],
                    ),
                    _p(summary.wilcoxon_p),
                    _p(summary.t_test_p),
                    _p(summary.adjusted_p),
                    _number(summary.cohen_dz, 3),
                    _number(summary.rank_biserial, 3),
                    f"{entry.beyond_noise}/{summary.n}" if entry.noise_floor is not None else "—",
                ]
            )
        widths = [
            40 * mm,
            11 * mm,
            8 * mm,
            30 * mm,
            30 * mm,
            14 * mm,
            12 * mm,
            12 * mm,
            10 * mm,
            10 * mm,
            12 * mm,
        ]
        story.append(_table(data, widths, font_size=6.5))
        between = [(entry, arm) for entry in group.statistics for arm in entry.arms]
        if between:
            story.append(Paragraph("Between arms (Mann–Whitney U on the changes)", styles["Heading4"]))
            rows = [["Measure", "Arms", "n", "U", "p", "adj. p", "r rb"]]
            for entry, arm in between:
                rows.append(
                    [
                        Paragraph(entry.label, styles["BodyText"]),
                        f"{arm.first} vs {arm.second}",
                        f"{arm.n_first} / {arm.n_second}",
                        _number(arm.u, 4),
                        _p(arm.p),
                        _p(arm.adjusted_p),
                        _number(arm.rank_biserial, 3),
                    ]
                )
            story.append(
                _table(rows, [50 * mm, 40 * mm, 16 * mm, 16 * mm, 16 * mm, 16 * mm, 16 * mm], font_size=6.5)
            )
        for chart in group.charts:
            story.append(
                KeepTogether(
                    [
                        Paragraph(chart.title, styles["Heading4"]),
                        _image_flowable(chart.png, chart_width[chart.kind]),
                        Paragraph(chart.description, styles["Italic"]),
                    ]
                )
            )
        story.append(Spacer(1, 4 * mm))
    story += _normality_maps_story(report, document.width, styles)
    story.append(
        Paragraph(
            f"Generated by Facet on {report.generated_at:%Y-%m-%d %H:%M} UTC. Statistics by scipy and "
            "statsmodels; pseudonymous codes only.",
            styles["Italic"],
        )
    )
    document.build(story)
    return buffer.getvalue()


def _normality_maps_story(report: CohortReport, width: float, styles) -> list:
    """The average normality heatmaps per arm, each with the sentence that says what it shows."""
    from reportlab.platypus import Paragraph
    from reportlab.platypus.flowables import KeepTogether

    maps = report.normality_maps
    story = [Paragraph("Average normality heatmaps", styles["Heading2"])]
    left_out = []
    if maps.without_maps:
        left_out.append(
            f"{maps.without_maps} without stored heatmap values (analysed before they were stored)"
        )
    if maps.other_frame:
        left_out.append(f"{maps.other_frame} with another heatmap metric or crop size")
    story.append(
        Paragraph(
            f"Subjects in the statistics: {maps.subjects}"
            + (f"; left out: {'; '.join(left_out)}" if left_out else "")
            + ". Per arm: the mean heatmap of the pre photos, of the post photos (one colour scale) and the "
            "mean of each subject's post − pre difference (blue: lower after), on the aligned face.",
            styles["Italic"],
        )
    )
    if not report.normality_charts:
        story.append(Paragraph("No subject has stored heatmap values for both photos yet.", styles["Normal"]))
    for chart in report.normality_charts:
        story.append(
            KeepTogether(
                [
                    Paragraph(chart.title, styles["Heading4"]),
                    _image_flowable(chart.png, width),
                    Paragraph(chart.description, styles["Italic"]),
                ]
            )
        )
    return story
