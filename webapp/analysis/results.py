"""Analysis results as the photo, subject, comparison and cohort pages read them."""

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from ml.zones.atlas import ZONES
from webapp.analysis.models import Result
from webapp.analysis.selectors import latest_result, latest_results
from webapp.studies.models import AnalysisKind, Comparison, Photo, PhotoView, Study, Subject, Visit


def subject_visits_with_photos(subject: Subject) -> QuerySet[Visit]:
    """The subject's visits in date order, each with its photos and their jobs, for side-by-side pages."""
    photos = Photo.objects.filter(deleted_at__isnull=True).prefetch_related("jobs__result").order_by("view")
    return (
        subject.visits.filter(deleted_at__isnull=True)
        .prefetch_related(Prefetch("photos", queryset=photos))
        .order_by("date", "created_at")
    )


def zone_colour(number: int) -> str:
    """A distinct colour per atlas zone (golden-angle hues), shared by overlay and legend."""
    return f"hsl({(number * 137.508) % 360:.0f}, 78%, 52%)"


def photo_results(photo: Photo) -> dict[str, Result | None]:
    """The latest succeeded result of each analysis kind for the photo (None where there is none).

    When the landmark analysis found no face, the kinds that need a face have no result to show, even
    one a model produced anyway (a zone model draws zones on any image): they do not apply."""
    found = {kind: latest_result(photo.pk, kind) for kind in AnalysisKind.values}
    if no_face_found(found):
        found.update(dict.fromkeys(FACE_KINDS))
    return found


# Every kind but the landmark analysis, which looks for the face, measures something of a face.
FACE_KINDS = tuple(kind for kind in AnalysisKind.values if kind != AnalysisKind.LANDMARKS)


def no_face_found(found: dict[str, Result | None]) -> bool:
    """Whether the photo's landmarks result exists and found no face."""
    landmarks = found.get(AnalysisKind.LANDMARKS)
    return landmarks is not None and not landmarks.data.get("faces")


def zone_rows(
    zones_data: dict | None, wrinkles_data: dict | None, zones_of_interest: list[str]
) -> list[dict]:
    """One row per atlas zone, zones of interest first (in atlas order), with area, share of the face
    and, when a wrinkles result exists, that zone's wrinkle figures."""
    zone_by_abbr = {zone["abbreviation"]: zone for zone in (zones_data or {}).get("zones", [])}
    wrinkles_by_abbr = {zone["abbreviation"]: zone for zone in (wrinkles_data or {}).get("zones", [])}
    interest = set(zones_of_interest)
    rows = []
    for zone in ZONES:
        measured = zone_by_abbr.get(zone.abbreviation, {})
        rows.append(
            {
                "number": zone.number,
                "abbreviation": zone.abbreviation,
                "name": zone.name,
                "interest": zone.abbreviation in interest,
                "colour": zone_colour(zone.number),
                "area_px": measured.get("area_px"),
                "face_percent": 100 * measured["face_fraction"] if "face_fraction" in measured else None,
                "wrinkles": wrinkles_by_abbr.get(zone.abbreviation),
                "wrinkle_percent": 100 * wrinkles_by_abbr[zone.abbreviation]["area_fraction"]
                if zone.abbreviation in wrinkles_by_abbr
                else None,
            }
        )
    return sorted(rows, key=lambda row: (not row["interest"], row["number"]))


def zones_overlay_data(zones_data: dict, zones_of_interest: list[str]) -> dict:
    """What zones.js draws: each zone's outlines, colour and name, in the photo's pixel frame."""
    interest = set(zones_of_interest)
    return {
        "image": zones_data.get("image", {}),
        "zones": [
            {
                "abbreviation": zone["abbreviation"],
                "name": zone["name"],
                "number": zone["number"],
                "colour": zone_colour(zone["number"]),
                "interest": zone["abbreviation"] in interest,
                "outlines": zone.get("outlines", []),
            }
            for zone in zones_data.get("zones", [])
        ],
    }


def wrinkle_type_boxes(wrinkles_data: dict) -> list[dict]:
    """The wrinkle types a result found, best first, as boxes to draw in the photo's pixel frame; one
    colour per line type."""
    from ml.wrinkles.type_geometry import TYPE_CLASSES, TYPE_LABELS

    found = (wrinkles_data.get("types") or {}).get("found") or []
    return [
        {
            "type": item["class"],
            "name": TYPE_LABELS.get(item["class"], item["class"].replace("_", " ")),
            "score": item["score"],
            "x": item["box"][0],
            "y": item["box"][1],
            "width": item["box"][2] - item["box"][0],
            "height": item["box"][3] - item["box"][1],
            "colour": zone_colour(
                (TYPE_CLASSES.index(item["class"]) if item["class"] in TYPE_CLASSES else index) * 3 + 1
            ),
        }
        for index, item in enumerate(found)
    ]


def wrinkle_noise_floors(pre: Result, post: Result) -> dict[str, float] | None:
    """The wrinkle measures' noise floors (the ones the cohort, the exports and the API use) when both
    results come from the wrinkle model version they were measured with (same weights), else None."""
    from ml.measures.catalogue import noise_floor_weights_sha256, noise_floors

    if not pre.weights_sha256 or pre.weights_sha256 != post.weights_sha256:
        return None
    if pre.weights_sha256 != noise_floor_weights_sha256("wrinkles"):
        return None
    return noise_floors()


def wrinkle_zone_changes(
    pre_data: dict | None, post_data: dict | None, zones: list[str], floors: dict[str, float] | None = None
) -> list[dict]:
    """Per zone of `zones`: wrinkle area (% of the zone and pixels) before and after, and the change.

    Area fractions are compared, not pixels: the two photos need not have the same scale. With the
    measures' noise `floors` (:func:`wrinkle_noise_floors`), a change no larger than the zone's
    ``wrinkle_area`` floor is marked as no measurable change.
    """
    if not pre_data or not post_data:
        return []
    pre = {zone["abbreviation"]: zone for zone in pre_data.get("zones", [])}
    post = {zone["abbreviation"]: zone for zone in post_data.get("zones", [])}
    rows = []
    for abbreviation in zones:
        if abbreviation not in pre or abbreviation not in post:
            continue
        before, after = pre[abbreviation], post[abbreviation]
        change = 100 * (after["area_fraction"] - before["area_fraction"])
        floor = (floors or {}).get(f"wrinkle_area:{abbreviation}")
        rows.append(
            {
                "abbreviation": abbreviation,
                "name": before["name"],
                "pre_percent": 100 * before["area_fraction"],
                "post_percent": 100 * after["area_fraction"],
                "change_points": change,
                "floor_points": floor,
                "no_measurable_change": floor is not None and abs(change) <= floor,
                "pre_px": before.get("wrinkle_area_px"),
                "post_px": after.get("wrinkle_area_px"),
                "pre_length_px": before.get("total_length_px"),
                "post_length_px": after.get("total_length_px"),
            }
        )
    return rows


def wrinkle_type_changes(
    measures: dict[str, list[float]] | None,
    ipd_mm: float | None = None,
    floors: dict[str, float] | None = None,
) -> list[dict]:
    """Per clinical wrinkle type, from a comparison pair's stored measures: wrinkle area (% of the type's
    region) and length before and after (IPD, or mm when the study sets its IPD in mm: ``ipd_mm``, the
    conversion of the cohort and the reports), and the area change in percentage points, marked as no
    measurable change when within the measure's noise floor in `floors` (:func:`wrinkle_noise_floors`,
    the ones the reports and the cohort use; a type never seen in the noise-floor run has none, so
    nothing is marked)."""
    from ml.measures.catalogue import TYPE_FAMILIES, definition
    from ml.wrinkles.type_geometry import TYPE_CLASSES, TYPE_LABELS

    area_family, length_family = TYPE_FAMILIES
    floors = floors or {}
    rows = []
    for name in TYPE_CLASSES:
        area = (measures or {}).get(f"{area_family}:{name}")
        if area is None:
            continue
        length_measure = definition(f"{length_family}:{name}")
        length = (measures or {}).get(length_measure.key) or [None, None]
        if ipd_mm is not None:
            length = [None if value is None else length_measure.in_mm(value, ipd_mm) for value in length]
        change = area[1] - area[0]
        floor = floors.get(f"{area_family}:{name}")
        rows.append(
            {
                "type": name,
                "name": TYPE_LABELS[name],
                "pre_percent": area[0],
                "post_percent": area[1],
                "change_points": change,
                "floor_points": floor,
                "no_measurable_change": floor is not None and abs(change) <= floor,
                "pre_length": length[0],
                "post_length": length[1],
                "length_unit": length_measure.unit_label(ipd_mm),
            }
        )
    return rows


def zones_of_interest_wrinkle_percent(data: dict | None, zones: list[str]) -> float | None:
    """Wrinkle pixels in the zones of interest as a percentage of those zones' pixels (None without data)."""
    if not data:
        return None
    chosen = [zone for zone in data.get("zones", []) if zone["abbreviation"] in set(zones)]
    # Results since the skin mask measure each zone's analysed skin (region_px); older ones the zone.
    area = sum(zone.get("region_px", zone.get("zone_area_px", 0)) for zone in chosen)
    if not area:
        return None
    return 100.0 * sum(zone.get("wrinkle_area_px", 0) for zone in chosen) / area


def _flagged_sides(pre_data: dict, post_data: dict, flag: str) -> list[str]:
    """The sides (before, after) whose normality result's ``observed`` record raises ``flag``."""
    return [
        side
        for side, data in (("before", pre_data), ("after", post_data))
        if (data.get("observed") or {}).get(flag)
    ]


def normality_change(pre_data: dict | None, post_data: dict | None) -> dict | None:
    """Both scores S, the change, the percentage difference and whether the face became more normal
    (higher S = more normal), plus the 1–7 ratings where a regressor gave them, and whether the change
    is within the noise floor (the change of S from framing alone, from the normalizer's model card)."""
    if not pre_data or not post_data:
        return None
    before, after = float(pre_data["score"]), float(post_data["score"])
    ratings = [(data.get("rating") or {}).get("value") for data in (pre_data, post_data)]
    regressors = [(data.get("rating") or {}).get("model_version") for data in (pre_data, post_data)]
    # S of one face moves with the normalizer's weights (report §21.2): two versions' scores differ in scale.
    normalizers = [(data.get("model") or {}).get("weights_sha256") for data in (pre_data, post_data)]
    same_normalizer = normalizers[0] == normalizers[1]
    floor = (post_data.get("reference") or {}).get("noise_floor")
    return {
        "pre": before,
        "post": after,
        "change": after - before,
        "improved": after > before,
        "pre_rating": ratings[0],
        "post_rating": ratings[1],
        "rating_change": ratings[1] - ratings[0] if None not in ratings else None,
        "rating_trained_on": (post_data.get("rating") or {}).get("trained_on"),
        "same_regressor": regressors[0] == regressors[1],
        "same_region": pre_data.get("region") == post_data.get("region"),
        "same_normalizer": same_normalizer,
        "normalizer_versions": [(data.get("model") or {}).get("version") for data in (pre_data, post_data)],
        "region": post_data.get("region"),
        "metric": (post_data.get("metric") or {}).get("heatmap"),
        "metric_label": (post_data.get("labels") or {}).get("heatmap"),
        "noise_floor": floor,
        "within_noise_floor": same_normalizer and floor is not None and abs(after - before) <= floor,
        # Sides framed so tightly that S may differ from a loose framing's by more than the floor.
        "tightly_framed": _flagged_sides(pre_data, post_data, "tight_framing"),
        # Sides edited before upload (black fill of a rotation or crop): S may not match an unedited photo's.
        "edited_fill": _flagged_sides(pre_data, post_data, "edited_fill"),
    }


@dataclass
class CohortRow:
    """One subject's pre→post change for one comparison and view."""

    subject: Subject
    comparison: Comparison
    view: str
    view_label: str
    normality: dict | None
    wrinkles_pre: float | None
    wrinkles_post: float | None

    @property
    def wrinkles_change(self) -> float | None:
        if self.wrinkles_pre is None or self.wrinkles_post is None:
            return None
        return self.wrinkles_post - self.wrinkles_pre


def cohort_rows(study: Study) -> list[CohortRow]:
    """Every comparison of the study, per view photographed at both visits: normality score change
    and wrinkle area in the study's zones of interest, before and after."""
    view_labels = dict(PhotoView.choices)
    comparisons = (
        Comparison.objects.alive()
        .filter(subject__study=study)
        .select_related("subject", "pre_visit", "post_visit")
        .prefetch_related(
            Prefetch("pre_visit__photos", queryset=Photo.objects.filter(deleted_at__isnull=True)),
            Prefetch("post_visit__photos", queryset=Photo.objects.filter(deleted_at__isnull=True)),
        )
        .order_by("subject__code", "created_at")
    )
    views = [
        (comparison, view, pre, post)
        for comparison in comparisons
        for view, pre, post in _photographed_at_both_visits(comparison)
    ]
    kinds = (AnalysisKind.NORMALITY, AnalysisKind.WRINKLES)
    found = latest_results({photo.pk for _, _, pre, post in views for photo in (pre, post)}, kinds)

    def data(photo: Photo, kind: str) -> dict | None:
        result = found.get((photo.pk, kind))
        return result.data if result is not None else None

    return [
        CohortRow(
            subject=comparison.subject,
            comparison=comparison,
            view=view,
            view_label=view_labels[view],
            normality=normality_change(data(pre, AnalysisKind.NORMALITY), data(post, AnalysisKind.NORMALITY)),
            wrinkles_pre=zones_of_interest_wrinkle_percent(
                data(pre, AnalysisKind.WRINKLES), study.zones_of_interest
            ),
            wrinkles_post=zones_of_interest_wrinkle_percent(
                data(post, AnalysisKind.WRINKLES), study.zones_of_interest
            ),
        )
        for comparison, view, pre, post in views
    ]


def _photographed_at_both_visits(comparison: Comparison) -> list[tuple[str, Photo, Photo]]:
    """(view, pre photo, post photo) per view photographed at both visits (prefetched), in view order."""
    pre_photos = {photo.view: photo for photo in comparison.pre_visit.photos.all()}
    post_photos = {photo.view: photo for photo in comparison.post_visit.photos.all()}
    return [
        (view, pre_photos[view], post_photos[view])
        for view, _ in PhotoView.choices
        if view in pre_photos and view in post_photos
    ]


def comparison_changes(comparison: Comparison) -> list[dict]:
    """Per view photographed at both visits of a comparison: the two photos, the normality change and
    the wrinkle change in each zone of interest, and what is missing (a result not there yet, or not
    applicable to a photo without a face)."""
    zones = comparison.subject.study.zones_of_interest
    pre_photos = {photo.view: photo for photo in comparison.pre_visit.photos.alive().order_by("uploaded_at")}
    post_photos = {
        photo.view: photo for photo in comparison.post_visit.photos.alive().order_by("uploaded_at")
    }
    changes = []
    for view, _ in PhotoView.choices:
        if view not in pre_photos or view not in post_photos:
            continue
        pre, post = pre_photos[view], post_photos[view]
        found = {"pre": photo_results(pre), "post": photo_results(post)}
        missing = [
            f"{side} photo {photo.pk}: "
            + ("no face found" if no_face_found(found[side]) else f"no {kind} result yet")
            for side, photo in (("pre", pre), ("post", post))
            for kind in (AnalysisKind.NORMALITY, AnalysisKind.WRINKLES)
            if found[side][kind] is None
        ]

        def data(side: str, kind: str, found: dict = found) -> dict | None:
            result = found[side][kind]
            return result.data if result is not None else None

        changes.append(
            {
                "view": view,
                "pre_photo": pre.pk,
                "post_photo": post.pk,
                "normality": normality_change(
                    data("pre", AnalysisKind.NORMALITY), data("post", AnalysisKind.NORMALITY)
                ),
                "wrinkles": wrinkle_zone_changes(
                    data("pre", AnalysisKind.WRINKLES), data("post", AnalysisKind.WRINKLES), zones
                ),
                "missing": missing,
                "results": [result.pk for side in found.values() for result in side.values() if result],
            }
        )
    return changes
