"""Read queries for studies, scoped to what a user may see.

Every `*_for_user` function returns only objects of studies the user belongs to (site admins see
all), and the `get_*` functions raise Http404 for anything outside that scope.
"""

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Prefetch, Q, QuerySet

from webapp.studies.access import Capability, is_site_admin, not_found, require
from webapp.studies.models import Comparison, Photo, PhotoView, Study, StudyMembership, Subject, Visit

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
