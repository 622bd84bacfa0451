"""Input forms of the analysis pages. They only parse and validate input; services make the changes."""

from django import forms

from webapp.studies.forms import analysis_choices
from webapp.studies.models import LandmarkDetector, NormalityRegion, Study


def zone_choices() -> list[tuple[str, str]]:
    from ml.zones.atlas import ZONES

    return [(zone.abbreviation, f"{zone.abbreviation} · {zone.name}") for zone in ZONES]


class StudySettingsForm(forms.Form):
    """The analysis settings of a study, edited by its coordinators."""

    analyses = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Analyses queued automatically for every uploaded photo. Analyses whose model is not "
        "trained are not offered (listed below with how to train them).",
    )
    zones_of_interest = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "zone-choices"}),
        help_text="Zones listed first on photo pages and compared before/after for this study. "
        "L = the patient's left (image right on a frontal photo).",
    )
    normality_region = forms.ChoiceField(
        choices=NormalityRegion.choices,
        help_text="Where the normality score S is measured (Hayajneh et al.): around the mouth and nose "
        "(cleft lip), or the whole face without the eyes.",
    )
    landmark_detector = forms.ChoiceField(
        required=False,
        choices=LandmarkDetector.choices,
        help_text="The landmark model of the study's landmark analyses; yolo-pose68 needs trained weights "
        "(shipped, or a campaign's version activated for this study or the site).",
    )
    force_zone_baseline = forms.BooleanField(
        required=False,
        label="Always use the landmark zone baseline",
        help_text="Run zones with the 68-landmark geometric baseline even when the segmentation model "
        "is trained (keeps a study's zone definitions constant).",
    )

    def __init__(self, *args, study: Study, **kwargs) -> None:
        kwargs.setdefault(
            "initial",
            {
                "analyses": study.analyses,
                "zones_of_interest": study.zones_of_interest,
                "normality_region": study.normality_region,
                "force_zone_baseline": study.force_zone_baseline,
                "landmark_detector": study.landmark_detector,
            },
        )
        super().__init__(*args, **kwargs)
        self.fields["analyses"].choices = analysis_choices(keep=study.analyses)
        self.fields["zones_of_interest"].choices = zone_choices()
