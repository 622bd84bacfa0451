"""Model activation (issue 16, item 3): each version's figure beside the figure of what runs now (the
active version, else the shipped weights), and a version below its model's floor is activated only when
the admin confirms it."""

import pytest
from django.urls import reverse

from ml.model_names import WRINKLES_UNET_WDS, YOLO_POSE68
from webapp.analysis import model_figures
from webapp.analysis.models import ModelVersion
from webapp.analysis.services import model_version_register

pytestmark = pytest.mark.django_db


def wrinkle_version(version: str, jsi: float) -> ModelVersion:
    return model_version_register(
        name=WRINKLES_UNET_WDS,
        task="wrinkle-segmentation",
        version=version,
        source=f"training {version}",
        metrics={"cv": {"folds": 5, "pooled": {"jsi": jsi, "images": 40}}},
    )


def test_figures_read_each_kind_of_metrics_and_judge_the_floor():
    zero = model_figures.figure(WRINKLES_UNET_WDS, {"cv": {"pooled": {"jsi": 0.0}}})
    assert zero.value == 0.0 and zero.below_floor
    assert not model_figures.figure(WRINKLES_UNET_WDS, {"jsi": 0.29}).below_floor
    # Lower is better for a landmark error: 0.06 passes the 0.08 rule, 0.11 does not.
    assert not model_figures.figure(YOLO_POSE68, {"nme": 0.06}).below_floor
    assert model_figures.figure(YOLO_POSE68, {"nme": 0.11}).below_floor
    assert model_figures.figure(WRINKLES_UNET_WDS, {}).below_floor  # nothing says it works
    assert model_figures.figure("zones-landmark", {"x": 1}) is None


def test_the_shipped_wrinkle_model_has_a_figure_above_its_floor():
    shipped = model_figures.shipped_figure(WRINKLES_UNET_WDS)
    if shipped is None:
        pytest.skip("the wrinkle weights are not installed")
    assert shipped.value is not None and not shipped.below_floor


def test_the_page_shows_figures_beside_the_shipped_ones_and_refuses_a_zero_jsi_without_confirmation(
    client, make_user
):
    useless = wrinkle_version("jsi-zero", 0.0)
    good = wrinkle_version("jsi-good", 0.31)
    client.force_login(make_user("siteadmin", staff=True))
    url = reverse("analysis:model_versions")
    page = client.get(url).content.decode()
    assert 'data-role="shipped"' in page and "Runs now: shipped weights" in page
    assert "JSI on test images 0.0000" in page and "below the floor ≥ 0.1" in page
    assert page.count('data-role="below-floor"') == 1

    response = client.post(url, {"model_version": useless.pk}, follow=True)
    assert "was not activated: its JSI on test images 0.0000 is below the floor" in response.content.decode()
    assert not ModelVersion.objects.get(pk=useless.pk).is_active

    client.post(url, {"model_version": good.pk})
    assert ModelVersion.objects.get(pk=good.pk).is_active
    page = client.get(url).content.decode()
    assert "Runs now: active version jsi-good, JSI on test images 0.3100" in page

    client.post(url, {"model_version": useless.pk, "confirm_below_floor": "1"})
    assert ModelVersion.objects.get(pk=useless.pk).is_active
    assert not ModelVersion.objects.get(pk=good.pk).is_active


def test_a_study_choosing_a_version_below_the_floor_sees_its_figure_and_a_warning(client, study_with_members):
    study = study_with_members["study"]
    useless = wrinkle_version("study-zero", 0.0)
    ModelVersion.objects.filter(pk=useless.pk).update(weights_path="/nonexistent/but/named.pt")
    client.force_login(study_with_members["coordinator"])
    settings_page = client.get(reverse("studies:study_settings", args=[study.pk])).content.decode()
    assert (
        "study-zero · training study-zero · JSI on test images 0.0000 (below the floor ≥ 0.1)"
        in settings_page
    )
    response = client.post(
        reverse("studies:study_model_version", args=[study.pk]),
        {"name": WRINKLES_UNET_WDS, "model_version": useless.pk},
        follow=True,
    )
    page = response.content.decode()
    assert "New wrinkles-unet-wds jobs of this study run version study-zero." in page
    assert "JSI on test images 0.0000 is below the floor (≥ 0.1)" in page
