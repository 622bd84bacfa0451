"""Model registry: registration, once-per-process loading, description and discovery."""

import hashlib
import subprocess
import sys
import threading
import time

import pytest

from ml.config import repo_root
from ml.registry import ModelRegistry, ModelSpec, UnknownModelError, registry


def _spec(name: str = "toy", loader=None, **fields) -> ModelSpec:
    return ModelSpec(
        name=name, task="toy-task", version="1.0", loader=loader or (lambda weights: object()), **fields
    )


def test_load_calls_the_loader_once_even_from_many_threads():
    calls = []

    def loader(weights):
        calls.append(weights)
        time.sleep(0.05)
        return object()

    models = ModelRegistry(pipelines=())
    models.register(_spec(loader=loader))
    results = []
    threads = [threading.Thread(target=lambda: results.append(models.load("toy"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len({id(result) for result in results}) == 1
    assert models.is_loaded("toy")
    models.unload("toy")
    models.load("toy")
    assert len(calls) == 2


def test_describe_is_json_safe_and_hashes_the_weights_without_server_paths(tmp_path):
    import json

    import numpy as np

    weights = tmp_path / "toy.bin"
    weights.write_bytes(b"weights" * 1000)
    models = ModelRegistry(pipelines=())
    models.register(
        _spec(
            weights_path=weights,
            licence="MIT",
            metrics={"nme": np.float64(0.04)},
            trained=False,
            description="A toy.",
            data="none",
            command="make toy",
            limitations="A toy only.",
        )
    )
    description = models.describe("toy")
    assert description == {
        "name": "toy",
        "task": "toy-task",
        "version": "1.0",
        "description": "A toy.",
        "data": "none",
        "command": "make toy",
        "licence": "MIT",
        "limitations": "A toy only.",
        "metrics": {"nme": 0.04},
        "weights": "toy.bin",
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "details": {},
        "trained": False,
    }
    assert str(tmp_path) not in json.dumps(description)


def test_load_and_describe_another_weights_file_cache_per_file(tmp_path):
    shipped, trained = tmp_path / "shipped.bin", tmp_path / "trained-v2.bin"
    shipped.write_bytes(b"shipped")
    trained.write_bytes(b"trained")
    loaded = []
    models = ModelRegistry(pipelines=())
    models.register(_spec(weights_path=shipped, loader=lambda weights: loaded.append(weights) or object()))
    default, other = models.load("toy"), models.load("toy", trained)
    assert (
        models.load("toy") is default and models.load("toy", str(trained)) is other and default is not other
    )
    assert loaded == [None, trained.resolve()]
    assert models.is_loaded("toy") and models.is_loaded("toy", trained)
    described = models.describe("toy", trained)
    assert described["weights"] == "trained-v2.bin" and described["trained"] is True
    assert described["weights_sha256"] == hashlib.sha256(b"trained").hexdigest()
    with pytest.raises(FileNotFoundError, match="absent.bin"):
        models.load("toy", tmp_path / "absent.bin")
    models.unload("toy")
    assert not models.is_loaded("toy") and not models.is_loaded("toy", trained)


def test_sha256_is_none_without_weights_and_follows_the_file(tmp_path):
    assert _spec().weights_sha256 is None
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"a")
    spec = _spec(weights_path=weights)
    assert spec.weights_sha256 == hashlib.sha256(b"a").hexdigest()
    weights.write_bytes(b"bb")
    assert spec.weights_sha256 == hashlib.sha256(b"bb").hexdigest()


def test_names_filter_by_task_and_unknown_names_are_explained():
    models = ModelRegistry(pipelines=())
    models.register(_spec("a"))
    models.register(ModelSpec(name="b", task="other", version="1", loader=lambda weights: object()))
    assert models.names() == ["a", "b"]
    assert models.names(task="other") == ["b"]
    with pytest.raises(UnknownModelError, match="Unknown model 'c'. Registered models: a, b."):
        models.spec("c")
    with pytest.raises(ValueError, match="already registered"):
        models.register(_spec("a"))


def test_looking_up_one_model_imports_only_its_pipeline_and_loads_nothing():
    code = (
        "import sys\n"
        "import ml.cli, ml.landmarks.analysis, ml.landmarks.cli\n"
        "from ml.registry import registry\n"
        "assert registry.spec('dlib-68').task == 'landmarks'\n"
        "imported = sorted(n for n in sys.modules if n.startswith('ml.') and n.endswith('.models'))\n"
        "assert imported == ['ml.landmarks.models'], imported\n"
        "assert not registry.is_loaded('dlib-68')\n"
        "assert 'dlib' not in sys.modules, 'dlib imported at import time'\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root(), capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr


def test_discovery_imports_pipeline_models_modules():
    spec = registry.spec("dlib-68")
    assert spec.task == "landmarks" and spec.trained
    assert spec.weights_path is not None and spec.weights_path.name == "shape_predictor_68_face_landmarks.dat"
    assert len(spec.weights_sha256) == 64


def test_discovery_reports_a_broken_pipeline_without_hiding_the_others(tmp_path, monkeypatch):
    package = tmp_path / "fakepkg"
    (package / "good").mkdir(parents=True)
    (package / "bad").mkdir()
    for folder in (package, package / "good", package / "bad"):
        (folder / "__init__.py").write_text("")
    (package / "good" / "models.py").write_text(
        "from ml.registry import ModelSpec\nimport fakepkg\n"
        "fakepkg.REGISTRY.register(ModelSpec(name='g', task='t', version='1', loader=lambda weights: 0))\n"
    )
    (package / "bad" / "models.py").write_text("raise ImportError('missing dependency')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    models = ModelRegistry(pipelines=("bad", "good", "absent"), package="fakepkg")
    import fakepkg

    fakepkg.REGISTRY = models
    assert models.names() == ["g"]
    assert "missing dependency" in models.discovery_errors()["fakepkg.bad.models"]
