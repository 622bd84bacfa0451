"""Writes for the photo pairs of pre/post comparisons: which photos a comparison compares, their
comparability assessment and measures (``ml.measures``), a coordinator's acceptance of a pair beyond a
comparability limit, and comparisons for every subject of a study at once."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from ml.core.imageio import ImageLoadError, load_image
from ml.core.subject import subject_face
from ml.measures.catalogue import photo_measures
from ml.measures.comparability import PhotoFigures, assess_pair, face_colour
from ml.measures.facial import face_frame
from webapp.analysis.models import ComparisonPair, Result
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.runs.models import RunStatus
from webapp.studies import services as study_services
from webapp.studies.models import AnalysisKind, Comparison, Photo, Study, VisitRole

logger = logging.getLogger(__name__)
SIDES = ("pre", "post")


def latest_results(photo_ids: Iterable[int]) -> dict[tuple[int, str], Result]:
    """The latest succeeded result per (photo, kind) of the given photos, in one query."""
    found: dict[tuple[int, str], Result] = {}
    results = (
        Result.objects.filter(job__photo_id__in=list(photo_ids), job__status=RunStatus.SUCCEEDED)
        .select_related("job")
        .order_by("job__finished_at")
    )
    for result in results:
        found[(result.job.photo_id, result.job.kind)] = result
    return found


def _photo_figures(photo: Photo, landmarks: Result | None) -> PhotoFigures | None:
    face = subject_face((landmarks.data.get("faces") or []) if landmarks else [])
    if face is None:
        return None
    points = np.asarray(face["landmarks"], dtype=np.float64)
    try:
        face_frame(points)
    except ValueError:
        return None  # degenerate landmarks: nothing to register
    colour = None
    try:
        with photo.image.open("rb") as stored:
            colour = face_colour(load_image(stored.read()), points)
    except (OSError, ImageLoadError, ValueError) as error:
        # Without the colour figures the geometric checks still stand; say why in the log.
        logger.warning("Colour figures of photo %s unavailable: %s", photo.pk, error)
    return PhotoFigures(
        landmarks=points, pose=face.get("pose"), colour=colour, size=(photo.width, photo.height)
    )


def _model_version_warnings(sources: dict[str, dict]) -> list[str]:
    """One sentence per analysis whose two results come from different model weights: a model upgrade
    between the photos' analyses moves the measures of an unchanged face (normality S, report §21.2)."""
    warnings = []
    for kind in sorted(set(sources["pre"]) & set(sources["post"])):
        pre, post = sources["pre"][kind], sources["post"][kind]
        weights = pre["weights_sha256"], post["weights_sha256"]
        if all(weights) and weights[0] != weights[1]:
            warnings.append(
                f"The two photos' {kind} results come from different model versions ({pre['model']} "
                f"{pre['version']} and {post['model']} {post['version']}): their measures are not on one "
                "scale. Analyse the older photo again (its page) to compare results of one version."
            )
    return warnings


def pair_assess(pair: ComparisonPair, results: dict[tuple[int, str], Result] | None = None) -> ComparisonPair:
    """Compute the pair's measures (from the latest results of both photos) and comparability; a pair
    whose landmarks are not ready keeps ``assessed_at`` empty and is assessed when they arrive."""
    photos = {"pre": pair.pre_photo, "post": pair.post_photo}
    results = results if results is not None else latest_results(photo.pk for photo in photos.values())
    zones_of_interest = pair.comparison.subject.study.zones_of_interest
    measures: dict[str, dict[str, float]] = {}
    sources: dict[str, dict] = {}
    for side, photo in photos.items():
        found = {kind: results.get((photo.pk, kind)) for kind in AnalysisKind.values}
        measures[side] = photo_measures(
            **{kind: result.data if result else None for kind, result in found.items()},
            zones_of_interest=zones_of_interest,
        )
        sources[side] = {
            kind: {
                "result": result.pk,
                "model": result.model_name,
                "version": result.model_version,
                "weights_sha256": result.weights_sha256,
            }
            for kind, result in found.items()
            if result is not None
        }
    pair.measures = {
        key: [measures["pre"][key], measures["post"][key]]
        for key in measures["pre"]
        if key in measures["post"]
    }
    pair.sources = sources
    figures = [
        _photo_figures(photo, results.get((photo.pk, AnalysisKind.LANDMARKS))) for photo in photos.values()
    ]
    if None in figures:
        pair.figures, pair.warnings, pair.assessed_at = {}, [], None
    else:
        assessment = assess_pair(*figures)
        pair.figures, pair.warnings, pair.assessed_at = (
            assessment["figures"],
            assessment["warnings"] + _model_version_warnings(sources),
            timezone.now(),
        )
    pair.save(update_fields=["measures", "sources", "figures", "warnings", "assessed_at"])
    return pair


def pairs_assess_for_photo(photo_id: int) -> int:
    """Reassess every pair that compares the photo (a result of it arrived); returns how many."""
    pairs = (
        ComparisonPair.objects.alive()
        .filter(Q(pre_photo_id=photo_id) | Q(post_photo_id=photo_id))
        .select_related("comparison__subject__study", "pre_photo", "post_photo")
    )
    count = 0
    for pair in pairs:
        pair_assess(pair)
        count += 1
    return count


def pairs_reassess(study_id: int | None = None) -> int:
    """Reassess every living pair (of one study, or of all): after an upgrade that changes how measures
    or comparability are computed, stored pairs are otherwise only reassessed when a result arrives."""
    pairs = ComparisonPair.objects.alive().select_related(
        "comparison__subject__study", "pre_photo", "post_photo"
    )
    if study_id is not None:
        pairs = pairs.filter(comparison__subject__study_id=study_id)
    count = 0
    for pair in pairs.iterator(chunk_size=200):
        pair_assess(pair)
        count += 1
    return count


def _default_photos(comparison: Comparison) -> dict[str, tuple[Photo, Photo]]:
    """Per view photographed at both visits: the latest uploaded photo of each visit."""
    chosen: dict[str, dict[str, Photo]] = {}
    for side, visit in (("pre", comparison.pre_visit), ("post", comparison.post_visit)):
        for photo in visit.photos.alive().order_by("uploaded_at"):
            chosen.setdefault(photo.view, {})[side] = photo
    return {view: (sides["pre"], sides["post"]) for view, sides in chosen.items() if len(sides) == 2}


def comparison_pairs_ensure(comparison: Comparison) -> list[ComparisonPair]:
    """Create (and assess) a pair for each view photographed at both visits that has none yet."""
    existing = {pair.view: pair for pair in comparison.pairs.all()}
    for view, (pre, post) in _default_photos(comparison).items():
        if view not in existing:
            pair = ComparisonPair.objects.create(
                comparison=comparison, view=view, pre_photo=pre, post_photo=post
            )
            existing[view] = pair_assess(pair)
    return list(existing.values())


def pair_photos_choose(
    *,
    pair: ComparisonPair,
    pre_photo: Photo,
    post_photo: Photo,
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> ComparisonPair:
    """A coordinator picks which photo of each visit the pair compares (a visit may hold several)."""
    comparison = pair.comparison
    for photo, visit in ((pre_photo, comparison.pre_visit), (post_photo, comparison.post_visit)):
        if photo.visit_id != visit.pk or photo.view != pair.view or photo.is_deleted:
            raise ValidationError(
                f"Photo {photo.pk} is not a {pair.get_view_display()} photo of {visit.label}."
            )
    before = (pair.pre_photo_id, pair.post_photo_id)
    pair.pre_photo, pair.post_photo = pre_photo, post_photo
    pair.accepted_by, pair.accepted_at, pair.acceptance_note = None, None, ""
    pair.save(update_fields=["pre_photo", "post_photo", "accepted_by", "accepted_at", "acceptance_note"])
    pair_assess(pair)
    audit_record(
        action=AuditAction.UPDATE,
        summary=f"Chose photos {pre_photo.pk} → {post_photo.pk} for {pair}",
        actor=actor,
        target=comparison,
        request=request,
        details={
            "pair": pair.pk,
            "view": pair.view,
            "before": list(before),
            "after": [pre_photo.pk, post_photo.pk],
        },
    )
    return pair


def pair_accept(
    *,
    pair: ComparisonPair,
    accepted: bool,
    note: str,
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> ComparisonPair:
    """A coordinator includes a pair beyond a comparability limit in the cohort (or withdraws that)."""
    if accepted and not note.strip():
        raise ValidationError("Say why this pair is comparable despite its warnings.")
    pair.accepted_by = actor if accepted else None
    pair.accepted_at = timezone.now() if accepted else None
    pair.acceptance_note = note.strip() if accepted else ""
    pair.save(update_fields=["accepted_by", "accepted_at", "acceptance_note"])
    audit_record(
        action=AuditAction.STATE,
        summary=f"{'Accepted' if accepted else 'Withdrew acceptance of'} comparison pair {pair}",
        actor=actor,
        target=pair.comparison,
        request=request,
        details={"pair": pair.pk, "view": pair.view, "warnings": pair.warnings, "note": pair.acceptance_note},
    )
    return pair


def comparisons_create_for_study(
    *, study: Study, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> list[Comparison]:
    """For every subject with a pre and a post visit: a comparison of its first pre visit with its last
    post visit (kept if it exists), with its photo pairs."""
    created = []
    subjects = study.subjects.alive().prefetch_related("visits")
    for subject in subjects:
        visits = [visit for visit in subject.visits.all() if not visit.is_deleted]
        pre = [visit for visit in visits if visit.role == VisitRole.PRE]
        post = [visit for visit in visits if visit.role == VisitRole.POST]
        if not pre or not post:
            continue
        with transaction.atomic():
            comparison = study_services.comparison_create(
                pre_visit=pre[0], post_visit=post[-1], actor=actor, request=request
            )
            comparison_pairs_ensure(comparison)
        created.append(comparison)
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Created comparisons for every subject of {study.name!r}",
        actor=actor,
        target=study,
        request=request,
        details={"comparisons": [comparison.pk for comparison in created]},
    )
    return created
