"""One model registry for every pipeline.

Pipelines register :class:`ModelSpec` objects in ``ml/<pipeline>/models.py``; the registry imports
those modules the first time it is used, so ``ml.registry`` never needs to know the models and
nothing is loaded at import time. :meth:`ModelRegistry.load` builds a model once per process
(thread-safe) — this is how workers keep models in memory between jobs.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PIPELINES: tuple[str, ...] = ("landmarks", "zones", "wrinkles", "normality", "ratings")


class UnknownModelError(KeyError):
    """No model of that name is registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "Unknown model."


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ModelSpec:
    """What a model is, where its weights are and how to build it.

    ``loader`` returns the ready-to-use model; it is called at most once per process by
    :meth:`ModelRegistry.load`. ``trained`` is ``False`` for models that run without fitted weights
    or whose weights have no measured quality; their outputs must say so.
    """

    name: str
    task: str
    version: str
    loader: Callable[[], Any]
    weights_path: Path | None = None
    licence: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    trained: bool = True
    _sha256: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def weights_sha256(self) -> str | None:
        """SHA-256 of the weights file, computed on first access and cached; ``None`` without weights."""
        if self.weights_path is None:
            return None
        path = Path(self.weights_path)
        if not path.is_file():
            return None
        if self._sha256 is None:
            self._sha256 = file_sha256(path)
        return self._sha256


def _json_safe(value: Any) -> Any:
    """Turn numpy scalars, paths and nested containers into plain JSON types."""
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


class ModelRegistry:
    """Named models: registration, lazy per-process loading and JSON description."""

    def __init__(self, pipelines: tuple[str, ...] = PIPELINES, package: str = "ml") -> None:
        self._pipelines = pipelines
        self._package = package
        self._specs: dict[str, ModelSpec] = {}
        self._loaded: dict[str, Any] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._lock = threading.RLock()
        self._imported_pipelines: set[str] = set()
        self._discovery_errors: dict[str, str] = {}

    def _discover(self, wanted: str | None = None) -> None:
        """Import ``<package>.<pipeline>.models`` for each pipeline present, each at most once.

        With ``wanted``, stop as soon as a model of that name is registered, so looking up one
        model does not import every pipeline's (possibly heavy) dependencies.
        """
        with self._lock:
            for pipeline in self._pipelines:
                if wanted is not None and wanted in self._specs:
                    return
                if pipeline in self._imported_pipelines:
                    continue
                self._imported_pipelines.add(pipeline)
                module_name = f"{self._package}.{pipeline}.models"
                try:
                    found = importlib.util.find_spec(module_name)
                except ModuleNotFoundError:
                    found = None
                if found is None:
                    continue
                try:
                    importlib.import_module(module_name)
                except Exception as error:  # one broken pipeline must not hide the others
                    self._discovery_errors[module_name] = f"{type(error).__name__}: {error}"

    def register(self, spec: ModelSpec) -> ModelSpec:
        """Add a model; registering the same name twice is an error unless it is the same spec."""
        with self._lock:
            existing = self._specs.get(spec.name)
            if existing is not None and existing is not spec:
                raise ValueError(f"A model named '{spec.name}' is already registered.")
            self._specs[spec.name] = spec
            self._load_locks.setdefault(spec.name, threading.Lock())
        return spec

    def spec(self, name: str) -> ModelSpec:
        """The spec registered under ``name``; :class:`UnknownModelError` lists the known names."""
        self._discover(wanted=name)
        with self._lock:
            found = self._specs.get(name)
            if found is None:
                known = ", ".join(sorted(self._specs)) or "none"
                broken = "".join(
                    f" {module} failed to import ({reason})."
                    for module, reason in self._discovery_errors.items()
                )
                raise UnknownModelError(f"Unknown model '{name}'. Registered models: {known}.{broken}")
            return found

    def names(self, task: str | None = None) -> list[str]:
        """Sorted names of registered models, optionally only those for ``task``."""
        self._discover()
        with self._lock:
            return sorted(name for name, spec in self._specs.items() if task is None or spec.task == task)

    def load(self, name: str) -> Any:
        """The loaded model, built by its loader on first call and cached for the process."""
        spec = self.spec(name)
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            load_lock = self._load_locks[name]
        # A per-model lock lets different models load in parallel while one model loads once.
        with load_lock:
            with self._lock:
                if name in self._loaded:
                    return self._loaded[name]
            model = spec.loader()
            with self._lock:
                self._loaded[name] = model
            return model

    def discovery_errors(self) -> dict[str, str]:
        """Pipelines whose ``models`` module failed to import, with the error."""
        self._discover()
        with self._lock:
            return dict(self._discovery_errors)

    def is_loaded(self, name: str) -> bool:
        """Whether ``load(name)`` has already built the model in this process."""
        with self._lock:
            return name in self._loaded

    def unload(self, name: str) -> None:
        """Forget the cached model (the next ``load`` rebuilds it)."""
        with self._lock:
            self._loaded.pop(name, None)

    def describe(self, name: str) -> dict[str, Any]:
        """JSON-safe description: name, version, task, weights path and SHA-256, licence, metrics, trained."""
        spec = self.spec(name)
        return {
            "name": spec.name,
            "version": spec.version,
            "task": spec.task,
            "weights_path": str(spec.weights_path) if spec.weights_path is not None else None,
            "weights_sha256": spec.weights_sha256,
            "licence": spec.licence,
            "metrics": _json_safe(dict(spec.metrics)),
            "trained": spec.trained,
            "description": spec.description,
        }


registry = ModelRegistry()
