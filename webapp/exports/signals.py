"""Exports react to withdrawn study records (webapp.studies.signals): no built export keeps them."""

from django.dispatch import receiver

from webapp.exports.services import purge_exports_of_withdrawn_photos
from webapp.studies.signals import photos_withdrawn


@receiver(photos_withdrawn, dispatch_uid="exports-purge-exports-of-withdrawn-photos")
def purge_exports_of_withdrawn(sender, photos, actor, request=None, **kwargs) -> None:
    """A deleted subject's, visit's or photo's data leaves the study's built exports at once."""
    purge_exports_of_withdrawn_photos(photos, actor=actor, request=request)
