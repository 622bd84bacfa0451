"""``python -m ml normality validate`` and ``score --model inpainting`` on real photos (an untrained
stand-in network: these check the pipeline and the report, not the figures)."""

import json

import pytest
import torch

from ml.cli import main
from ml.config import data_dir_or_none
from ml.normality.analysis import build_normalizer
from ml.normality.inpainting import InpaintingNet, save_inpainter
from ml.normality.settings import DEFAULT_MIRROR_AVERAGE


@pytest.fixture
def data():
    folder = data_dir_or_none()
    if folder is None or not (folder / "cleft-pairs" / "cleft").is_dir() or not (folder / "london").is_dir():
        pytest.skip("the face data directory (FACET_DATA_DIR) with cleft-pairs/ and london/ is absent")
    return folder


@pytest.fixture
def stand_in_weights(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "inpainting-stand-in.pt"
    save_inpainter(InpaintingNet(channels=(8, 8, 8, 8, 8)), path, {"training": {"steps": 0}})
    return path


@pytest.fixture
def stand_in_options(data, stand_in_weights):
    """The data directory and the untrained inpainting stand-in, as the commands take them."""
    return ["--data", str(data), "--model", "inpainting", "--weights", str(stand_in_weights)]


def test_validate_reports_the_paired_test_and_the_group_comparison_with_its_confound(
    data, stand_in_options, tmp_path, capsys
):
    out = tmp_path / "validate.json"
    arguments = ["normality", "validate", *stand_in_options]
    status = main([*arguments, "--normal-limit", "2", "--defect-limit", "0", "--out", str(out)])
    assert status == 0
    report = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == report
    paired = report["paired_real"]
    assert paired["count"] == len(list((data / "cleft-pairs" / "cleft").glob("*.png"))) >= 4
    for pair in paired["pairs"]:
        assert pair["cleft_lower"] == (pair["score_cleft"] < pair["score_inpainted_twin"])
    groups = report["groups"]
    assert groups["london_adults"]["count"] == 2 and 0 <= groups["auroc_cleft_vs_london_adults"] <= 1
    assert "age" in groups["confound"]
    # The inpainting normalizer has no adaptation: the report does not claim the autoencoder's steps.
    assert report["adapt_steps"] is None and report["symmetry_weight"] == 0
    assert report["mirror_average"] is DEFAULT_MIRROR_AVERAGE


def test_validate_puts_the_simulated_defects_through_the_adaptation_steps_asked_for(
    data, tmp_path, monkeypatch, capsys
):
    from ml.normality import cli
    from ml.normality.models import autoencoder_weights_path

    if not autoencoder_weights_path().is_file():
        pytest.skip("the shipped autoencoder is not installed")
    built = []

    def build(name, weights, projection_steps, adapt_steps):
        built.append(adapt_steps)
        return build_normalizer(name, weights, projection_steps, adapt_steps)

    monkeypatch.setattr(cli, "build_normalizer", build)
    arguments = ["normality", "validate", "--data", str(data), "--model", "autoencoder", "--adapt-steps", "0"]
    # An empty cache stops the run after the defects' normalizer is built.
    options = ["--normal-limit", "0", "--defect-limit", "1", "--cache-dir", str(tmp_path)]
    assert main([*arguments, *options]) == 2
    assert "held-out MEBeauty faces" in capsys.readouterr().err
    assert built and built[-1] == 0  # 0 means none, as in the paired test, not the default


def test_validate_compares_the_clefts_with_listed_children_and_a_same_source_sample(
    data, stand_in_options, tmp_path, capsys
):
    faces = sorted((data / "landmarks300w" / "images").glob("*.jpg"))[:4]
    if len(faces) < 4:
        pytest.skip("landmarks300w/ is absent from the face data directory")
    named = [str(face.relative_to(data)) for face in faces]
    listing = tmp_path / "age-similar.json"
    listing.write_text(
        json.dumps(
            {
                "source": "landmarks300w",
                "selected_by": "this test",
                "caveat": "apparent age by eye; photo source differs",
                "children": named[:2],
                "same_source_sample": {"what": "two other faces", "faces": named[2:]},
            }
        )
    )
    out = tmp_path / "validate.json"
    arguments = ["normality", "validate", *stand_in_options]
    options = ["--normal-limit", "0", "--defect-limit", "0", "--age-similar", str(listing), "--out", str(out)]
    assert main([*arguments, *options]) == 0
    capsys.readouterr()
    compared = json.loads(out.read_text())["age_similar"]
    assert compared["confound"] == "apparent age by eye; photo source differs"
    assert compared["children"]["count"] + len(compared["children"]["not_scored"]) == 2
    assert set(compared["children"]["scores"]) <= set(named[:2])
    for comparison in ("cleft_vs_children", "cleft_vs_same_source_sample", "children_vs_same_source_sample"):
        figures = compared[comparison]
        if figures["auroc"] is not None:
            assert 0 <= figures["auroc"] <= 1 and 0 <= figures["mann_whitney_p_one_sided"] <= 1


def test_score_with_the_inpainting_normalizer_gives_labels_and_no_rating_from_another_normalizer(
    data, stand_in_weights, capsys
):
    photo = sorted((data / "london" / "neutral").glob("*.jpg"))[0]
    assert (
        main(
            [
                "normality",
                "score",
                str(photo),
                "--json",
                "--model",
                "inpainting",
                "--weights",
                str(stand_in_weights),
                "--no-rating",
            ]
        )
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["metric"]["projection_steps"] == 0 and document["metric"]["candidates"] == 1
    assert document["labels"]["region"] == "mouth and nose" and "brightness" in document["labels"]["heatmap"]
    assert document["rating"] is None and document["timings"]["normalize_s"] < 5


def test_write_reference_puts_range_and_floor_in_the_card_and_the_measures_floor_file(
    stand_in_weights, stand_in_options, tmp_path, capsys
):
    import dataclasses

    from ml.modelcard import ModelCard, card_path, read_card, write_card

    write_card(
        card_path(stand_in_weights),
        ModelCard(
            name="normality-inpainting-128",
            task="normality",
            version="stand-in",
            description="untrained stand-in",
            data="none",
            command="test",
            licence="test",
            limitations="untrained",
        ),
    )
    validated, framed, floor = tmp_path / "v.json", tmp_path / "f.json", tmp_path / "floor.json"
    assert (
        main(
            [
                "normality",
                "validate",
                *stand_in_options,
                "--normal-limit",
                "2",
                "--defect-limit",
                "0",
                "--out",
                str(validated),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "normality",
                "framing",
                *stand_in_options,
                "--limit",
                "1",
                "--crop-limit",
                "1",
                "--out",
                str(framed),
            ]
        )
        == 0
    )
    capsys.readouterr()
    arguments = ["--validate", str(validated), "--framing", str(framed), "--weights", str(stand_in_weights)]
    assert main(["normality", "write-reference", *arguments, "--measures-floor", str(floor)]) == 0
    framing = json.loads(framed.read_text())
    assert framing["residual_maps"].keys() == {"raw"}  # no residual reference beside these weights
    reference = read_card(card_path(stand_in_weights)).details["reference"]
    assert (
        reference["noise_floor"] == framing["noise_floor_95"] and reference["heatmap"] == "pse-ycbcr-eroded"
    )
    assert reference["count"] == 2
    written = json.loads(floor.read_text())
    assert written["measures"]["normality_score"]["repeatability_coefficient"] == framing["noise_floor_95"]
    assert written["heatmap"] == "pse-ycbcr-eroded" and written["normalizer"] == "normality-inpainting-128"
    assert dataclasses.asdict(read_card(card_path(stand_in_weights)))["version"] == "stand-in"
    # No standardized figures in these reports: refused, and the floor file is left as it was.
    standardized = [*arguments, "--residual-map", "standardized", "--measures-floor", str(floor)]
    assert main(["normality", "write-reference", *standardized]) != 0
    assert json.loads(floor.read_text()) == written
