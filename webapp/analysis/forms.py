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

    arms = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The study's treatment arms, one per line (e.g. filler, control). Subjects are assigned "
        "to arms on the cohort's subject page; the cohort compares arms.",
    )
    ipd_mm = forms.FloatField(
        required=False,
        min_value=40,
        max_value=80,
        label="Scale: inter-pupillary distance (mm)",
        help_text="When set (e.g. 63), landmark measures are shown in mm instead of IPD units.",
    )

    def clean_arms(self) -> list[str]:
        arms = [line.strip() for line in self.cleaned_data["arms"].splitlines() if line.strip()]
        if len(set(arms)) != len(arms):
            raise forms.ValidationError("Each arm needs its own name.")
        if any(len(arm) > 60 for arm in arms):
            raise forms.ValidationError("An arm's name has at most 60 characters.")
        return arms

    def __init__(self, *args, study: Study, **kwargs) -> None:
        kwargs.setdefault(
            "initial",
            {
                "arms": "\n".join(study.arms),
                "ipd_mm": study.ipd_mm,
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
