"""Read queries of human zone annotations. Callers check study access (webapp.studies.selectors.get_study).

Who may do what: members may look at the list (Capability.VIEW); importing a CVAT export needs
Capability.MANAGE_STUDY (coordinators and site admins decide what becomes a study's ground truth);
exporting the zone-training dataset needs Capability.EXPORT (photos leave the platform).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, QuerySet, Subquery

from ml.zones.atlas import ZONE_ABBREVIATIONS
from webapp.labeling.models import ZoneAnnotation, ZoneAnnotationImport
from webapp.studies.models import Photo, Study


def latest_zone_annotations(study: Study) -> QuerySet[ZoneAnnotation]:
    """The newest version of each annotated photo × zone of the study."""
    newest = (
        ZoneAnnotation.objects.filter(photo=OuterRef("photo"), zone=OuterRef("zone"))
        .order_by("-version")
        .values("version")[:1]
    )
    return (
        ZoneAnnotation.objects.filter(photo__study=study, version=Subquery(newest))
        .select_related("photo__visit__subject", "annotation_import")
        .order_by(
            "photo__visit__subject__code",
            "photo__visit__date",
            "photo__visit__label",
            "photo__view",
            "photo_id",
            "zone",
        )
    )


@dataclass(frozen=True)
class PhotoZones:
    """One annotated photo: its latest zone annotations in atlas order and the newest of them."""

    photo: Photo
    annotations: list[ZoneAnnotation]

    @property
    def zones(self) -> list[str]:
        return [annotation.zone for annotation in self.annotations]

    @property
    def newest(self) -> ZoneAnnotation:
        return max(self.annotations, key=lambda annotation: (annotation.created_at, annotation.pk))


def zone_annotations_by_photo(study: Study) -> list[PhotoZones]:
    grouped: dict[int, list[ZoneAnnotation]] = {}
    photos: dict[int, Photo] = {}
    for annotation in latest_zone_annotations(study):
        grouped.setdefault(annotation.photo_id, []).append(annotation)
        photos[annotation.photo_id] = annotation.photo
    return [
        PhotoZones(photos[photo_id], sorted(items, key=lambda a: ZONE_ABBREVIATIONS.index(a.zone)))
        for photo_id, items in grouped.items()
    ]


def zone_counts(rows: list[PhotoZones]) -> list[tuple[str, int]]:
    """How many photos have a human annotation of each zone (atlas order, annotated zones only)."""
    counts = {zone: 0 for zone in ZONE_ABBREVIATIONS}
    for row in rows:
        for zone in row.zones:
            counts[zone] += 1
    return [(zone, count) for zone, count in counts.items() if count]


def zone_annotation_imports(study: Study) -> QuerySet[ZoneAnnotationImport]:
    return ZoneAnnotationImport.objects.filter(study=study).order_by("-created_at", "-id")
