"""Input forms of the landmark pages. They only parse and validate input; services make the changes."""

import json
from typing import Any

from django import forms

from ml.model_names import DLIB_68
from webapp.campaigns.models import KeypointDataset
from webapp.runs.models import Queue
from webapp.studies.models import LandmarkDetector

MAX_IMPORT_BYTES = 200 * 1024 * 1024


class DetectorForm(forms.Form):
    detector = forms.ChoiceField(choices=LandmarkDetector.choices, label="Landmark detector")


class DatasetCreateForm(forms.Form):
    name = forms.CharField(max_length=100, label="Dataset name")


class ImportForm(forms.Form):
    format = forms.ChoiceField(
        choices=[
            ("coco", "COCO keypoints (.json, or a Facet COCO export .zip)"),
            ("dlib", "dlib imglab XML (.xml)"),
            ("pts", "iBUG .pts files (one .zip)"),
        ]
    )
    mapping = forms.ChoiceField(
        choices=[
            ("photo_id", "File name is the photo id: photo-12.png or 12.jpg"),
            ("subject_visit_view", "File path is subject/visit/view: S001/baseline/frontal.jpg"),
        ],
        label="Match files to photos by",
    )
    file = forms.FileField()
    val_fraction = forms.FloatField(
        min_value=0.0,
        max_value=0.9,
        initial=0.2,
        label="Validation fraction for new photos",
        help_text="Photos already in the dataset keep their split; a COCO file's facet_split is kept.",
    )
    one_based = forms.BooleanField(
        required=False, initial=True, label=".pts coordinates are 1-based (300-W convention)"
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError("Label files are limited to 200 MB.")
        return upload


class CampaignForm(forms.Form):
    name = forms.SlugField(max_length=60, help_text="Letters, digits, '-' and '_'; runs are named after it.")
    dataset = forms.ModelChoiceField(queryset=KeypointDataset.objects.none())
    teacher_model = forms.ChoiceField(
        required=False,
        choices=[("", "None: start from the dataset's latest version"), (DLIB_68, f"{DLIB_68} on a subset")],
        label="Iteration-0 teacher",
    )
    labelled_fraction = forms.FloatField(
        min_value=0.01, max_value=1.0, initial=0.2, help_text="Share of photos the teacher labels."
    )
    val_fraction = forms.FloatField(
        min_value=0.05,
        max_value=0.9,
        initial=0.25,
        help_text="Share of teacher-labelled photos kept for validation.",
    )
    iterations = forms.IntegerField(min_value=1, max_value=20, initial=3)
    epochs_first = forms.IntegerField(min_value=1, max_value=1000, initial=30, label="Epochs, iteration 0")
    epochs_next = forms.IntegerField(
        min_value=1, max_value=1000, initial=10, label="Epochs, later iterations"
    )
    imgsz = forms.IntegerField(
        min_value=64,
        max_value=1280,
        initial=640,
        label="Image size",
        help_text="A CPU worker caps it at 320 px.",
    )
    batch = forms.IntegerField(min_value=1, max_value=256, initial=16)
    min_confidence = forms.FloatField(
        min_value=0.01, max_value=1.0, initial=0.7, label="Pseudo-label confidence ≥"
    )
    max_iou = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.3, label="Add when box IoU ≤")
    # A campaign runs for hours: never on the quick queue, whose worker keeps upload checks fast.
    queue = forms.ChoiceField(choices=[(q.value, q.label) for q in (Queue.CPU, Queue.GPU)], initial=Queue.GPU)

    def __init__(self, *args: Any, study=None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = KeypointDataset.objects.filter(study=study)


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("accept", "Accept"), ("reject", "Reject")])
    keypoints = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_keypoints(self) -> list | None:
        text = self.cleaned_data["keypoints"].strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError("The corrected points could not be read.") from error
