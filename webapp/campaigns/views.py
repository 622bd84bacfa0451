"""Pages of landmark datasets, their import/export, campaigns with their charts, and the review flow.

Views parse input, call selectors (404 for outsiders, 403 for members without the capability) and
services, and render.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.analysis.kinds import model_is_usable
from webapp.analysis.services import landmark_detector_set
from webapp.audit.services import audit_page_view
from webapp.campaigns import charts, selectors, services
from webapp.campaigns.forms import CampaignForm, DatasetCreateForm, DetectorForm, ImportForm, ReviewForm
from webapp.campaigns.services import LandmarkDataError
from webapp.studies.access import Capability, capabilities
from webapp.studies.models import LandmarkDetector
from webapp.studies.selectors import get_study


def _flash_form_errors(request: HttpRequest, form) -> None:
    for name, errors in form.errors.items():
        prefix = "" if name == "__all__" else f"{form.fields[name].label or name}: "
        for error in errors:
            messages.error(request, f"{prefix}{error}")


def _can(user, study) -> dict[str, bool]:
    granted = {capability.value: True for capability in capabilities(user, study)}
    granted["review"] = selectors.can_review(user, study)
    return granted


@login_required
@require_GET
def study_home(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_study(request.user, study_id)
    context = {
        "study": study,
        "can": _can(request.user, study),
        "datasets": selectors.datasets_of_study(study),
        "campaigns": selectors.campaigns_of_study(study),
        "detector": study.landmark_detector,
        "detector_form": DetectorForm(initial={"detector": study.landmark_detector}),
        "yolo_trained": model_is_usable(LandmarkDetector.YOLO_POSE_68, study),
        "dataset_form": DatasetCreateForm(),
    }
    return render(request, "campaigns/study_home.html", context)


@login_required
@require_POST
def detector_set(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_study(request.user, study_id, Capability.MANAGE_STUDY)
    form = DetectorForm(request.POST)
    if form.is_valid():
        try:
            landmark_detector_set(
                study=study, detector=form.cleaned_data["detector"], actor=request.user, request=request
            )
            messages.success(
                request, f"New landmark analyses of this study use {form.cleaned_data['detector']}."
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    else:
        _flash_form_errors(request, form)
    return redirect("campaigns:study_home", study_id=study.pk)


@login_required
@require_POST
def dataset_create(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_study(request.user, study_id, Capability.MANAGE_STUDY)
    form = DatasetCreateForm(request.POST)
    if form.is_valid():
        try:
            dataset = services.dataset_create(
                study=study, name=form.cleaned_data["name"], actor=request.user, request=request
            )
        except LandmarkDataError as error:
            messages.error(request, error.message)
        else:
            return redirect("campaigns:dataset_detail", dataset_id=dataset.pk)
    else:
        _flash_form_errors(request, form)
    return redirect("campaigns:study_home", study_id=study.pk)


@login_required
@require_GET
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.get_dataset(request.user, dataset_id)
    study = dataset.study
    context = {
        "study": study,
        "dataset": dataset,
        "can": _can(request.user, study),
        "versions": dataset.versions.select_related("created_by", "parent").order_by("-number"),
        "queue": selectors.review_queue(dataset, limit=50),
        "import_form": ImportForm(),
    }
    return render(request, "campaigns/dataset_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def dataset_import(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.get_dataset(request.user, dataset_id, Capability.MANAGE_STUDY)
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            version = services.labels_import(
                dataset=dataset,
                fmt=data["format"],
                content=data["file"].read(),
                mapping=data["mapping"],
                val_fraction=data["val_fraction"],
                one_based=data["one_based"],
                actor=request.user,
                request=request,
            )
        except LandmarkDataError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Imported as version {version.name}: {version.note}.")
            return redirect("campaigns:version_detail", version_id=version.pk)
    return render(
        request,
        "campaigns/dataset_import.html",
        {"study": dataset.study, "dataset": dataset, "form": form},
        status=400 if form.errors else 200,
    )


@login_required
@require_GET
def version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    version = selectors.get_version(request.user, version_id)
    study = version.dataset.study
    instances = services.version_instances(version).select_related("photo__visit__subject", "labelled_by")
    return render(
        request,
        "campaigns/version_detail.html",
        {
            "study": study,
            "dataset": version.dataset,
            "version": version,
            "can": _can(request.user, study),
            "instances": instances[:500],
            "instance_count": instances.count(),
        },
    )


@login_required
@require_GET
def version_export(request: HttpRequest, version_id: int) -> HttpResponse:
    version = selectors.get_version(request.user, version_id, Capability.EXPORT)
    fmt = request.GET.get("format", "")
    try:
        filename, content = services.version_export(
            version=version, fmt=fmt, actor=request.user, request=request
        )
    except LandmarkDataError as error:
        return HttpResponseBadRequest(error.message)
    response = HttpResponse(content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_GET
def review_queue(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.get_dataset(request.user, dataset_id)
    return render(
        request,
        "campaigns/review_queue.html",
        {
            "study": dataset.study,
            "dataset": dataset,
            "can": _can(request.user, dataset.study),
            "queue": selectors.review_queue(dataset),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def instance_review(request: HttpRequest, instance_id: int) -> HttpResponse:
    if request.method == "GET":
        instance = selectors.get_instance(request.user, instance_id)
    else:
        instance = selectors.get_instance(request.user, instance_id, capability=None)
        form = ReviewForm(request.POST)
        if not form.is_valid():
            _flash_form_errors(request, form)
            return redirect("campaigns:instance_review", instance_id=instance.pk)
        try:
            if form.cleaned_data["decision"] == "accept":
                accepted = services.review_accept(
                    instance=instance,
                    actor=request.user,
                    keypoints=form.cleaned_data["keypoints"],
                    request=request,
                )
                messages.success(request, "Accepted: this label is now a human label.")
                return redirect("campaigns:instance_review", instance_id=accepted.pk)
            services.review_reject(instance=instance, actor=request.user, request=request)
            messages.success(request, "Rejected: the suggestion is left out of the new version.")
        except LandmarkDataError as error:
            messages.error(request, error.message)
            return redirect("campaigns:instance_review", instance_id=instance.pk)
        following = selectors.next_in_queue(instance.dataset)
        if following is not None:
            return redirect("campaigns:instance_review", instance_id=following.pk)
        return redirect("campaigns:review_queue", dataset_id=instance.dataset_id)
    study = instance.dataset.study
    view_grant = audit_page_view(
        request,
        summary=f"Viewed landmark instance {instance.pk}",
        target=instance,
        study_id=study.pk,
        photos=[instance.photo_id],
    )
    state = selectors.instance_state(instance)
    return render(
        request,
        "campaigns/instance_review.html",
        {
            "study": study,
            "dataset": instance.dataset,
            "instance": instance,
            "photo": instance.photo,
            "split": selectors.instance_split(instance),
            "view_grant": view_grant,
            "state": state,
            "can": _can(request.user, study),
            "reviewable": state.in_latest and not instance.is_human,
            "next_item": selectors.next_in_queue(instance.dataset),
            "points": {
                "keypoints": instance.keypoints,
                "box": instance.box,
                "width": instance.photo.width,
                "height": instance.photo.height,
            },
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def campaign_create(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_study(request.user, study_id, Capability.MANAGE_STUDY)
    form = CampaignForm(request.POST or None, study=study)
    if request.method == "POST" and form.is_valid():
        options = dict(form.cleaned_data)
        name, dataset = options.pop("name"), options.pop("dataset")
        try:
            campaign = services.campaign_create(
                study=study, dataset=dataset, name=name, actor=request.user, request=request, **options
            )
        except LandmarkDataError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Campaign {campaign.name} queued on the {campaign.queue} queue.")
            return redirect("campaigns:campaign_detail", campaign_id=campaign.pk)
    return render(
        request,
        "campaigns/campaign_create.html",
        {"study": study, "form": form},
        status=400 if form.errors else 200,
    )


def _campaign_charts(iterations: list) -> list[charts.LineChart]:
    labels = [f"iter {row.k}" for row in iterations]
    found = [
        charts.line_chart(
            "Labels per iteration",
            labels,
            {
                "train": [row.train_labels for row in iterations],
                "val": [row.val_labels for row in iterations],
                "total": [row.total_labels for row in iterations],
            },
            y_min=0,
            digits=0,
        ),
        charts.line_chart(
            "Pose detection on the validation split",
            labels,
            {
                "precision": [row.precision for row in iterations],
                "recall": [row.recall for row in iterations],
                "AP50": [row.ap50 for row in iterations],
                "AP50-95": [row.ap50_95 for row in iterations],
            },
            y_min=0,
            y_max=1,
        ),
        charts.line_chart(
            "Keypoint error (NME, outer eye corners)",
            labels,
            {"NME": [row.nme for row in iterations]},
            y_min=0,
            digits=3,
        ),
    ]
    return [chart for chart in found if chart is not None]


@login_required
@require_GET
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = selectors.get_campaign(request.user, campaign_id)
    iterations = list(campaign.iteration_rows.select_related("version_in", "version_out").order_by("k"))
    return render(
        request,
        "campaigns/campaign_detail.html",
        {
            "study": campaign.study,
            "campaign": campaign,
            "can": _can(request.user, campaign.study),
            "iterations": iterations,
            "charts": _campaign_charts(iterations),
            "last_epochs": campaign.epoch_log[-5:],
        },
    )
