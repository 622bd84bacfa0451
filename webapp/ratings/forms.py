"""Input forms of the rating pages. They only parse and validate input; services make the changes."""

from django import forms

from webapp.ratings.models import DEFAULT_ANCHORS, DEFAULT_QUESTION, CropRegion
from webapp.studies.models import Photo, PhotoView, Study, VisitRole


class PhotoChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, photo: Photo) -> str:
        visit = photo.visit
        return (
            f"{visit.subject.code} · {visit.label} ({visit.get_role_display()}) · {photo.get_view_display()}"
        )


class SurveyCreateForm(forms.Form):
    title = forms.CharField(max_length=200, help_text="For the coordinators only; raters never see it.")
    question = forms.CharField(max_length=300, initial=DEFAULT_QUESTION)
    views = forms.MultipleChoiceField(
        choices=PhotoView.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Rate every photo of these views…",
    )
    visit_roles = forms.MultipleChoiceField(
        choices=VisitRole.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Visits",
        help_text="…taken at these visits (pre, post, follow-up). Leave both empty to pick by hand.",
    )
    photos = PhotoChoiceField(
        queryset=Photo.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Hand-picked photos",
        help_text="Added to the photos chosen above.",
    )
    region = forms.ChoiceField(
        choices=CropRegion.choices,
        initial=CropRegion.WHOLE,
        help_text="Cropping to a region needs each photo's landmarks result.",
    )
    repeat_percent = forms.IntegerField(
        min_value=0,
        max_value=50,
        initial=10,
        label="Repeated photos (%)",
        help_text="Share of photos each rater sees a second time, for test–retest.",
    )
    attention_checks = forms.IntegerField(
        min_value=0, max_value=10, initial=0, help_text="Cards that ask for a given answer, at random places."
    )
    target_ratings_per_photo = forms.IntegerField(min_value=1, max_value=10_000, initial=20)

    def __init__(self, *args, study: Study, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.study = study
        self.fields["photos"].queryset = (
            Photo.objects.filter(study=study)
            .select_related("visit__subject")
            .order_by("visit__subject__code", "visit__date", "view")
        )
        for index, default in enumerate(DEFAULT_ANCHORS):
            self.fields[f"anchor_{index + 1}"] = forms.CharField(
                max_length=80, required=False, initial=default, label=f"Label of {index + 1}"
            )

    def anchors(self) -> list[str]:
        return [self.cleaned_data.get(f"anchor_{index + 1}", "") for index in range(len(DEFAULT_ANCHORS))]

    def chosen_photos(self) -> list[Photo]:
        chosen = {photo.pk: photo for photo in self.cleaned_data["photos"]}
        views, roles = self.cleaned_data["views"], self.cleaned_data["visit_roles"]
        if views or roles:
            matching = Photo.objects.filter(study=self.study)
            if views:
                matching = matching.filter(view__in=views)
            if roles:
                matching = matching.filter(visit__role__in=roles)
            chosen.update({photo.pk: photo for photo in matching})
        return sorted(chosen.values(), key=lambda photo: photo.pk)


class InvitationForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=500, initial=5, label="Number of links")


class ExclusionForm(forms.Form):
    excluded = forms.BooleanField(required=False)
    reason = forms.CharField(max_length=300, required=False)


class ImportForm(forms.Form):
    file = forms.FileField(help_text="Long CSV (UTF-8): one row per item, rater and rating.")
    title = forms.CharField(max_length=200, initial="Imported ratings")
    item_column = forms.CharField(max_length=100, initial="item")
    rater_column = forms.CharField(max_length=100, initial="rater")
    rating_column = forms.CharField(max_length=100, initial="rating")
    scale_min = forms.IntegerField(initial=1)
    scale_max = forms.IntegerField(initial=7)

    def clean(self) -> dict:
        cleaned = super().clean()
        low, high = cleaned.get("scale_min"), cleaned.get("scale_max")
        if low is not None and high is not None and high <= low:
            raise forms.ValidationError("The scale's highest point must be above its lowest.")
        return cleaned


class FitForm(forms.Form):
    candidates = forms.IntegerField(
        min_value=1,
        max_value=10,
        initial=1,
        label="K normalized candidates",
        help_text="Each normality job of the study then fits K candidates for the rating: K = 1 keeps a job "
        "near a second; K = 5 (Boyaci et al.) takes about five times as long (docs/normality.md).",
    )
    trials = forms.IntegerField(min_value=1, max_value=100, initial=20, label="TPE trials per regressor")
