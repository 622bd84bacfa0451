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
from webapp.analysis.cohort import MeasureRow, cohort_measure_rows
from webapp.analysis.models import ComparisonPair
from webapp.analysis.pairs import latest_results
from webapp.exports.services import photo_pixels
from webapp.exports.tables import Provenance, models_used
from webapp.studies.models import AnalysisKind, Comparison, PhotoView

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
