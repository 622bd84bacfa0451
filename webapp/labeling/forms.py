"""Input of the labeling pages: the label save (rough mask + threshold parameters) and the training start."""

from django import forms

from ml.wrinkles.labeling import (
    BRADLEY_ROTH_PERCENT,
    BRADLEY_ROTH_WINDOW,
    OPENCV_BLOCK_SIZE,
    OPENCV_C,
)
from webapp.labeling.models import RegionKind, ThresholdMethod

MAX_MASK_BYTES = 8 * 1024 * 1024


def _odd(value: int) -> None:
    if value % 2 == 0:
        raise forms.ValidationError("Must be an odd number.")


class LabelSaveForm(forms.Form):
    rough_mask = forms.FileField(help_text="PNG of the brushed rough mask, the size of the labeling image.")
    region = forms.ChoiceField(choices=RegionKind.choices)
    landmarks_result = forms.IntegerField(required=False, min_value=1)
    method = forms.ChoiceField(choices=ThresholdMethod.choices, initial=ThresholdMethod.BRADLEY_ROTH)
    window = forms.IntegerField(min_value=3, max_value=101, initial=BRADLEY_ROTH_WINDOW, validators=[_odd])
    percent = forms.FloatField(min_value=0, max_value=100, initial=BRADLEY_ROTH_PERCENT)
    block_size = forms.IntegerField(min_value=3, max_value=101, initial=OPENCV_BLOCK_SIZE, validators=[_odd])
    c = forms.FloatField(min_value=-50, max_value=50, initial=OPENCV_C)
    note = forms.CharField(required=False, max_length=1000)

    def clean_rough_mask(self):
        upload = self.cleaned_data["rough_mask"]
        if upload.size > MAX_MASK_BYTES:
            raise forms.ValidationError(
                f"The rough mask is larger than {MAX_MASK_BYTES // (1024 * 1024)} MB."
            )
        return upload


class TrainingStartForm(forms.Form):
    width = forms.IntegerField(min_value=2, max_value=64, initial=16, help_text="U-Net base width.")
    size = forms.IntegerField(min_value=64, max_value=640, initial=256, help_text="Training side in pixels.")
    epochs = forms.IntegerField(min_value=1, max_value=500, initial=20)
    folds = forms.IntegerField(
        min_value=2,
        max_value=10,
        initial=5,
        help_text="Cross-validation folds (lowered when there are few subjects).",
    )
    include_synthetic = forms.BooleanField(required=False, help_text="Also train on the semi-synthetic set.")

    def clean_size(self) -> int:
        size = self.cleaned_data["size"]
        if size % 16:
            raise forms.ValidationError("Must be a multiple of 16.")
        return size


class ZoneAnnotationImportForm(forms.Form):
    """A CVAT export of zone annotations: the XML, or the ZIP that CVAT downloads."""

    export = forms.FileField(
        label="CVAT export",
        help_text="'CVAT for images 1.1' (annotations.xml or its ZIP) or 'Segmentation mask 1.1' (ZIP).",
    )
