"""Read queries for studies, scoped to what a user may see.

Every `*_for_user` function returns only objects of studies the user belongs to (site admins see
all), and the `get_*` functions raise Http404 for anything outside that scope.
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Prefetch, Q, QuerySet

from webapp.studies.access import Capability, is_site_admin, not_found, require
from webapp.studies.models import Comparison, Photo, PhotoView, Study, StudyMembership, Subject, Visit

if TYPE_CHECKING:
    from webapp.analysis.models import Result

User = AbstractBaseUser | AnonymousUser


def studies_for_user(user: User) -> QuerySet[Study]:
    if is_site_admin(user):
        studies = Study.objects.all()
    elif user.is_authenticated:
        studies = Study.objects.filter(memberships__user=user)
    else:
        return Study.objects.none()
    return studies.annotate(
        subject_count=Count("subjects", filter=Q(subjects__deleted_at__isnull=True), distinct=True),
        photo_count=Count("photos", filter=Q(photos__in=Photo.objects.alive()), distinct=True),
    )


def study_ids_for_user(user: User) -> QuerySet:
    if is_site_admin(user):
        return Study.objects.values("pk")
    if not user.is_authenticated:
        return Study.objects.none().values("pk")
    return StudyMembership.objects.filter(user=user).values("study_id")


def get_study(user: User, study_id: int, capability: Capability = Capability.VIEW) -> Study:
    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        raise not_found(user, "study", study_id)
    require(user, study, capability, what="study", object_id=study_id)
    return study


def subjects_for_user(user: User) -> QuerySet[Subject]:
    return Subject.objects.alive().filter(study_id__in=study_ids_for_user(user)).select_related("study")


def get_subject(user: User, subject_id: int, capability: Capability = Capability.VIEW) -> Subject:
    subject = Subject.objects.alive().select_related("study").filter(pk=subject_id).first()
    if subject is None:
        raise not_found(user, "subject", subject_id)
    require(user, subject.study, capability, what="subject", object_id=subject_id)
    return subject


def visits_for_user(user: User) -> QuerySet[Visit]:
    return (
        Visit.objects.alive()
        .filter(subject__study_id__in=study_ids_for_user(user))
        .select_related("subject__study")
    )


def get_visit(user: User, visit_id: int, capability: Capability = Capability.VIEW) -> Visit:
    visit = Visit.objects.alive().select_related("subject__study").filter(pk=visit_id).first()
    if visit is None:
        raise not_found(user, "visit", visit_id)
    require(user, visit.subject.study, capability, what="visit", object_id=visit_id)
    return visit


def photos_for_user(user: User) -> QuerySet[Photo]:
    return (
        Photo.objects.alive()
        .filter(study_id__in=study_ids_for_user(user))
        .select_related("visit__subject", "study")
    )


def get_photo(user: User, photo_id: int, capability: Capability = Capability.VIEW) -> Photo:
    photo = Photo.objects.alive().select_related("visit__subject", "study").filter(pk=photo_id).first()
    if photo is None:
        raise not_found(user, "photo", photo_id)
    require(user, photo.study, capability, what="photo", object_id=photo_id)
    return photo


def comparisons_for_user(user: User) -> QuerySet[Comparison]:
    return (
        Comparison.objects.alive()
        .filter(subject__study_id__in=study_ids_for_user(user))
        .select_related("subject__study", "pre_visit", "post_visit")
    )


def get_comparison(user: User, comparison_id: int, capability: Capability = Capability.VIEW) -> Comparison:
    comparison = (
        Comparison.objects.alive()
        .select_related("subject__study", "pre_visit", "post_visit")
        .filter(pk=comparison_id)
        .first()
    )
    if comparison is None:
        raise not_found(user, "comparison", comparison_id)
    require(user, comparison.subject.study, capability, what="comparison", object_id=comparison_id)
    return comparison


def subject_visits_with_photos(subject: Subject) -> QuerySet[Visit]:
    """The subject's visits in date order, each with its photos and their jobs, for side-by-side pages."""
    photos = Photo.objects.filter(deleted_at__isnull=True).prefetch_related("jobs__result").order_by("view")
    return (
        subject.visits.filter(deleted_at__isnull=True)
        .prefetch_related(Prefetch("photos", queryset=photos))
        .order_by("date", "created_at")
    )


def study_members(study: Study) -> QuerySet[StudyMembership]:
    return study.memberships.select_related("user").order_by("role", "user__username")


@dataclass
class SubjectRow:
    subject: Subject
    visit_count: int = 0
    photo_count: int = 0
    missing: list[str] = field(default_factory=list)


def subject_rows(
    study: Study, subjects: "QuerySet[Subject] | list[Subject] | None" = None
) -> list[SubjectRow]:
    """Per subject (of `subjects`, default all the study's living ones, by code): visits, photos, and each
    visit's required views that have no photo yet."""
    if subjects is None:
        subjects = study.subjects.alive().order_by("code")
    if isinstance(subjects, list):
        subjects = Subject.objects.filter(pk__in=[subject.pk for subject in subjects]).order_by("code")
    view_labels = dict(PhotoView.choices)
    rows = []
    live_photos = Prefetch("photos", queryset=Photo.objects.filter(deleted_at__isnull=True))
    live_visits = Prefetch(
        "visits", queryset=Visit.objects.filter(deleted_at__isnull=True).prefetch_related(live_photos)
    )
    for subject in subjects.prefetch_related(live_visits):
        row = SubjectRow(subject=subject)
        for visit in subject.visits.all():
            present = {photo.view for photo in visit.photos.all()}
            row.visit_count += 1
            row.photo_count += len(visit.photos.all())
            row.missing += [
                f"{visit.label}: {view_labels[view]}" for view in study.required_views if view not in present
            ]
        rows.append(row)
    return rows


# Analysis results as the photo, comparison and cohort pages show them ---------------------------------


def zone_colour(number: int) -> str:
    """A distinct colour per atlas zone (golden-angle hues), shared by overlay and legend."""
    return f"hsl({(number * 137.508) % 360:.0f}, 78%, 52%)"


def photo_results(photo: Photo) -> "dict[str, Result | None]":
    """The latest succeeded result of each analysis kind for the photo (None where there is none)."""
    from webapp.analysis.kinds import AnalysisKind
    from webapp.analysis.selectors import latest_result

    return {kind: latest_result(photo.pk, kind) for kind in AnalysisKind.values}


def zone_rows(
    zones_data: dict | None, wrinkles_data: dict | None, zones_of_interest: list[str]
) -> list[dict]:
    """One row per atlas zone, zones of interest first (in atlas order), with area, share of the face
    and, when a wrinkles result exists, that zone's wrinkle figures."""
    from ml.zones.atlas import ZONES

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


def _percent_change(before: float, after: float) -> float | None:
    return 100.0 * (after - before) / abs(before) if before else None


def wrinkle_zone_changes(pre_data: dict | None, post_data: dict | None, zones: list[str]) -> list[dict]:
    """Per zone of `zones`: wrinkle area (% of the zone and pixels) before and after, and the change.

    Area fractions are compared, not pixels: the two photos need not have the same scale.
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
        rows.append(
            {
                "abbreviation": abbreviation,
                "name": before["name"],
                "pre_percent": 100 * before["area_fraction"],
                "post_percent": 100 * after["area_fraction"],
                "change_points": 100 * (after["area_fraction"] - before["area_fraction"]),
                "pre_px": before.get("wrinkle_area_px"),
                "post_px": after.get("wrinkle_area_px"),
                "pre_length_px": before.get("total_length_px"),
                "post_length_px": after.get("total_length_px"),
            }
        )
    return rows


def zones_of_interest_wrinkle_percent(data: dict | None, zones: list[str]) -> float | None:
    """Wrinkle pixels in the zones of interest as a percentage of those zones' pixels (None without data)."""
    if not data:
        return None
    chosen = [zone for zone in data.get("zones", []) if zone["abbreviation"] in set(zones)]
    area = sum(zone.get("zone_area_px", 0) for zone in chosen)
    if not area:
        return None
    return 100.0 * sum(zone.get("wrinkle_area_px", 0) for zone in chosen) / area


def normality_change(pre_data: dict | None, post_data: dict | None) -> dict | None:
    """Both scores S, the change, the percentage difference and whether the face became more normal
    (higher S = more normal), plus the 1–7 ratings where a regressor gave them."""
    if not pre_data or not post_data:
        return None
    before, after = float(pre_data["score"]), float(post_data["score"])
    ratings = [(data.get("rating") or {}).get("value") for data in (pre_data, post_data)]
    return {
        "pre": before,
        "post": after,
        "change": after - before,
        "percent": _percent_change(before, after),
        "improved": after > before,
        "pre_rating": ratings[0],
        "post_rating": ratings[1],
        "rating_change": ratings[1] - ratings[0] if None not in ratings else None,
        "same_region": pre_data.get("region") == post_data.get("region"),
        "region": post_data.get("region"),
        "metric": (post_data.get("metric") or {}).get("heatmap"),
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
    from webapp.analysis.kinds import AnalysisKind
    from webapp.analysis.selectors import latest_result

    view_labels = dict(PhotoView.choices)
    rows = []
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
    for comparison in comparisons:
        pre_photos = {photo.view: photo for photo in comparison.pre_visit.photos.all()}
        post_photos = {photo.view: photo for photo in comparison.post_visit.photos.all()}
        for view, _ in PhotoView.choices:
            if view not in pre_photos or view not in post_photos:
                continue
            pre, post = pre_photos[view], post_photos[view]
            results = {
                (side, kind): latest_result(photo.pk, kind)
                for side, photo in (("pre", pre), ("post", post))
                for kind in (AnalysisKind.NORMALITY, AnalysisKind.WRINKLES)
            }

            def data(side: str, kind: str, results: dict = results) -> dict | None:
                result = results[(side, kind)]
                return result.data if result is not None else None

            rows.append(
                CohortRow(
                    subject=comparison.subject,
                    comparison=comparison,
                    view=view,
                    view_label=view_labels[view],
                    normality=normality_change(
                        data("pre", AnalysisKind.NORMALITY), data("post", AnalysisKind.NORMALITY)
                    ),
                    wrinkles_pre=zones_of_interest_wrinkle_percent(
                        data("pre", AnalysisKind.WRINKLES), study.zones_of_interest
                    ),
                    wrinkles_post=zones_of_interest_wrinkle_percent(
                        data("post", AnalysisKind.WRINKLES), study.zones_of_interest
                    ),
                )
            )
    return rows
