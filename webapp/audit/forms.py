from django import forms

from webapp.audit.models import AuditAction
from webapp.audit.selectors import AuditFilter


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, label="User")
    action = forms.ChoiceField(required=False, choices=[("", "any")] + AuditAction.choices)
    object_type = forms.CharField(required=False, label="Object type")
    study = forms.IntegerField(required=False, min_value=1, label="Study id")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    text = forms.CharField(required=False, label="Text or object id")

    def to_filter(self) -> AuditFilter:
        data = self.cleaned_data if self.is_valid() else {}
        return AuditFilter(
            actor=data.get("actor", "").strip(),
            action=data.get("action", ""),
            object_type=data.get("object_type", "").strip(),
            study_id=data.get("study"),
            since=data.get("since"),
            until=data.get("until"),
            text=data.get("text", "").strip(),
        )
