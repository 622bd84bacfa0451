"""The kinds of run: every concrete model that subclasses :class:`webapp.runs.models.Run`.

A new kind of work needs no registration here: subclassing ``Run`` (with ``run_kind``, ``run_label``,
``task_name``, ``control_capability`` and the ``run_*`` methods) puts it on the queue page, under the
sweeper and behind the generic status, cancel and retry endpoints.
"""

from django.apps import apps
from django.http import Http404

from webapp.runs.models import Run


def run_models() -> list[type[Run]]:
    """Every concrete run model, in the order of their ``run_kind``."""
    found = [model for model in apps.get_models() if issubclass(model, Run) and not model._meta.abstract]
    return sorted(found, key=lambda model: model.run_kind)


def run_model(run_kind: str) -> type[Run]:
    """The model of ``run_kind``; Http404 for an unknown kind (it comes from a URL)."""
    for model in run_models():
        if model.run_kind == run_kind:
            return model
    raise Http404("No such kind of job.")


def kind_choices() -> list[tuple[str, str]]:
    return [(model.run_kind, model.run_label) for model in run_models()]
