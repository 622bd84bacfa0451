"""Semi-automatic wrinkle labels from human wrinkle boxes (YOLO files) for photos already in a study."""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.labeling import selectors, services
from webapp.labeling.models import ThresholdMethod
from webapp.studies.models import Photo


class Command(BaseCommand):
    help = (
        "Save a semi-automatic wrinkle label for a photo from human wrinkle boxes (a YOLO .txt file: "
        "'class cx cy w h' a line, normalised to the photo). The boxes are the rough mask; the label is the "
        "photo's next version and opens in the browser labeler (whole-photo region) for correction."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("photo", type=int, help="photo id")
        parser.add_argument("boxes", type=Path, help="YOLO box file of the photo")
        parser.add_argument("--user", required=True, help="the annotator the label is saved under")
        parser.add_argument("--method", choices=ThresholdMethod.values, default=ThresholdMethod.BRADLEY_ROTH)

    def handle(self, *args, **options) -> None:
        author = get_user_model().objects.filter(username=options["user"]).first()
        if author is None:
            raise CommandError(f"No user '{options['user']}'.")
        photo = Photo.objects.filter(pk=options["photo"], deleted_at__isnull=True).first()
        if photo is None:
            raise CommandError(f"No photo {options['photo']}.")
        if not selectors.can_label(author, photo.study):
            raise CommandError(f"{author.get_username()} may not label photos of study {photo.study_id}.")
        if not options["boxes"].is_file():
            raise CommandError(f"No box file {options['boxes']}.")
        try:
            label = services.label_from_boxes(
                photo=photo, author=author, yolo_boxes=options["boxes"].read_text(), method=options["method"]
            )
        except services.LabelingError as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            f"photo {photo.pk}: label version {label.version}, {label.wrinkle_pixels} wrinkle pixels inside "
            f"{label.rough_pixels} box pixels"
        )
