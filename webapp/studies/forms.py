"""Input forms of the study pages. They only parse and validate input; services make the changes."""

from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.validators import UnicodeUsernameValidator

from webapp.studies.catalogue import untrained_kinds
from webapp.studies.models import (
    AnalysisKind,
    PhotoView,
    Role,
    Subject,
    Visit,
    VisitRole,
    subject_code_validator,
)


def analysis_choices(keep: list[str] | tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Analyses a study may run on new uploads: those whose model is trained, plus any in `keep`
    (already chosen), labelled so a coordinator sees that their jobs fail until the model is trained."""
    blocked = untrained_kinds()
    choices = []
    for value, label in AnalysisKind.choices:
        if value not in blocked:
            choices.append((value, label))
        elif value in keep:
            choices.append((value, f"{label} (model not trained: its jobs fail)"))
    return choices


class StudyCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    protocol = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Treatment, visit schedule and photo standard. No patient-identifying details.",
    )
    required_views = forms.MultipleChoiceField(
        choices=PhotoView.choices,
        initial=[PhotoView.FRONTAL.value],
        widget=forms.CheckboxSelectMultiple,
        help_text="Views every visit should have; missing ones are flagged on the study page.",
    )
    analyses = forms.MultipleChoiceField(
        choices=analysis_choices,
        initial=[AnalysisKind.LANDMARKS.value],
        widget=forms.CheckboxSelectMultiple,
        help_text="Analyses queued automatically for every uploaded photo. Analyses whose model is not "
        "trained are not offered.",
    )


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)

    def clean_username(self) -> AbstractBaseUser:
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"There is no active user called {username!r}.")
        return user


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class SubjectCreateForm(forms.Form):
    code = forms.CharField(
        max_length=40,
        validators=[subject_code_validator],
        help_text="A pseudonymous study code such as S-014. Never use names, initials or dates of birth.",
    )


class VisitCreateForm(forms.Form):
    label = forms.CharField(max_length=60, help_text="e.g. baseline, week 12, post-op")
    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    role = forms.ChoiceField(choices=VisitRole.choices)


class PhotoUploadForm(forms.Form):
    file = forms.FileField(allow_empty_file=True)
    view = forms.ChoiceField(choices=PhotoView.choices, initial=PhotoView.FRONTAL.value)


def latest_visit(visits: list[Visit], role: str) -> Visit | None:
    """The last visit (in date order) with the given role."""
    matching = [visit for visit in visits if visit.role == role]
    return matching[-1] if matching else None


class ComparisonCreateForm(forms.Form):
    """Two different visits of one subject; defaults to the latest pre and the latest post visit."""

    pre_visit = forms.ModelChoiceField(queryset=Visit.objects.none(), label="Before (pre)")
    post_visit = forms.ModelChoiceField(queryset=Visit.objects.none(), label="After (post)")

    def __init__(self, *args, subject: Subject, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        visits = subject.visits.order_by("date", "created_at")
        for name in ("pre_visit", "post_visit"):
            self.fields[name].queryset = visits
            self.fields[name].label_from_instance = _visit_choice_label
        ordered = list(visits)
        pre = latest_visit(ordered, VisitRole.PRE)
        post = latest_visit(ordered, VisitRole.POST) or latest_visit(ordered, VisitRole.FOLLOW_UP)
        self.fields["pre_visit"].initial = pre.pk if pre else None
        self.fields["post_visit"].initial = post.pk if post else None

    def clean(self) -> dict:
        cleaned = super().clean()
        pre, post = cleaned.get("pre_visit"), cleaned.get("post_visit")
        if pre and post and pre.pk == post.pk:
            raise forms.ValidationError("Choose two different visits.")
        return cleaned


def _visit_choice_label(visit: Visit) -> str:
    date = visit.date.isoformat() if visit.date else "no date"
    return f"{visit.label} ({visit.get_role_display()}, {date})"


class SubjectEditForm(forms.Form):
    code = forms.CharField(max_length=40, validators=[subject_code_validator], label="Code")


class VisitEditForm(VisitCreateForm):
    pass


class PhotoEditForm(forms.Form):
    """Correct a photo's view, or move it to another visit of its subject's study."""

    view = forms.ChoiceField(choices=PhotoView.choices)
    visit = forms.ModelChoiceField(queryset=Visit.objects.none())

    def __init__(self, *args, photo, **kwargs) -> None:
        kwargs.setdefault("initial", {"view": photo.view, "visit": photo.visit_id})
        super().__init__(*args, **kwargs)
        self.fields["visit"].queryset = (
            Visit.objects.alive()
            .filter(subject__study_id=photo.study_id)
            .select_related("subject")
            .order_by("subject__code", "date", "created_at")
        )
        self.fields["visit"].label_from_instance = lambda visit: (
            f"{visit.subject.code} · {_visit_choice_label(visit)}"
        )


class DeleteForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        help_text="Why it is deleted, e.g. 'wrong subject', 'consent withdrawn'. Kept in the audit trail.",
    )


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(choices=Role.choices)


class InvitationAcceptForm(forms.Form):
    username = forms.CharField(max_length=150, validators=[UnicodeUsernameValidator()], label="User name")
    password1 = forms.CharField(
        label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args, email: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            raise forms.ValidationError("The two passwords differ.")
        if first:
            candidate = get_user_model()(username=cleaned.get("username", ""), email=self.email)
            password_validation.validate_password(first, candidate)
        return cleaned
