"""Every registered model keeps the registry's contract (segmentation_models_pytorch-style: one test body
over all models, so a model added later is checked without writing a test for it)."""

import hashlib
import json
import shutil

import pytest

from ml.config import repo_root, weights_dir
from ml.modelcard import card_path, read_card
from ml.registry import registry

MODELS = registry.names()
MAX_SHIPPED_BYTES = 25 * 2**20
# Results and model versions store a model's name and version in columns of this width.
MAX_NAME_OR_VERSION_CHARS = 100
PROVENANCE_FIELDS = {
    "name",
    "task",
    "version",
    "description",
    "data",
    "command",
    "licence",
    "limitations",
    "metrics",
    "details",
    "weights",
    "weights_sha256",
    "trained",
}


def test_every_pipeline_registers_its_models():
    assert not registry.discovery_errors()
    assert {registry.spec(name).task for name in MODELS} >= {
        "landmarks",
        "zones",
        "wrinkle-segmentation",
        "normality",
    }


@pytest.mark.parametrize("name", MODELS)
def test_description_is_a_complete_card_without_server_paths(name):
    description = registry.describe(name)
    assert set(description) == PROVENANCE_FIELDS
    assert not registry.spec(name).card.missing(), f"{name}'s model card leaves fields empty"
    text = json.dumps(description)  # JSON-safe
    assert str(repo_root()) not in text and str(weights_dir()) not in text
    if description["weights"] is not None:
        assert "/" not in description["weights"]
    assert len(description["name"]) <= MAX_NAME_OR_VERSION_CHARS
    assert len(description["version"]) <= MAX_NAME_OR_VERSION_CHARS, "a version is an identifier, not a note"
    spec = registry.spec(name)
    if spec.weights_path is not None and spec.weights_path.is_file():
        assert description["weights_sha256"] == hashlib.sha256(spec.weights_path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", MODELS)
def test_shipped_weights_are_small_and_carry_their_card_file(name):
    spec = registry.spec(name)
    if spec.weights_path is None or not spec.weights_path.is_file():
        pytest.skip(f"{name} has no weights file here")
    if not spec.weights_path.is_relative_to(weights_dir()):
        pytest.skip(f"{name}'s weights come from an installed package, not from the repository")
    assert spec.weights_path.stat().st_size <= MAX_SHIPPED_BYTES
    card = read_card(card_path(spec.weights_path))
    assert card.name == name and card.weights == spec.weights_path.name
    assert card.weights_sha256 == spec.weights_sha256


@pytest.mark.parametrize("name", MODELS)
def test_loads_once_per_process(name):
    spec = registry.spec(name)
    if spec.weights_path is not None and not spec.weights_path.exists():
        pytest.skip(f"{name} is not installed here: {spec.command}")
    registry.unload(name)
    model = registry.load(name)
    assert model is not None and registry.load(name) is model and registry.is_loaded(name)


@pytest.mark.parametrize("name", MODELS)
def test_another_weights_file_is_loaded_and_named_in_the_provenance(name, tmp_path):
    spec = registry.spec(name)
    if spec.weights_path is None or not spec.weights_path.is_file():
        pytest.skip(f"{name} has no weights file to copy here")
    if not spec.weights_path.is_relative_to(weights_dir()):
        pytest.skip(f"{name}'s weights come from an installed package")
    other = tmp_path / f"other-{spec.weights_path.name}"
    shutil.copyfile(spec.weights_path, other)
    if name == "zones-hrnet":  # the ensemble reads its configuration beside the weights
        shutil.copyfile(spec.weights_path.parent / "ensemble.json", tmp_path / "ensemble.json")
        shutil.copyfile(other, tmp_path / spec.weights_path.name)
    described = registry.describe(name, other)
    assert described["weights"] == other.name and described["trained"] is True
    assert described["weights_sha256"] == hashlib.sha256(other.read_bytes()).hexdigest()
    assert registry.load(name, other) is not None and registry.is_loaded(name, other)
