"""One model registry for every pipeline.

Pipelines register :class:`ModelSpec` objects in ``ml/<pipeline>/models.py`` (names from
:mod:`ml.model_names`, descriptions from model cards, :mod:`ml.modelcard`); the registry imports those
modules the first time it is used, so ``ml.registry`` never needs to know the models and nothing is
loaded at import time. The registry owns the weights: :meth:`ModelRegistry.load` builds a model from
its shipped weights or from a given file (an activated trained version), once per process and file
(thread-safe), and :meth:`ModelRegistry.describe` records the SHA-256 of exactly that file.
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

from ml.modelcard import ModelCard

PIPELINES: tuple[str, ...] = ("landmarks", "zones", "wrinkles", "normality", "ratings", "measures")


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
    """What a model is (its model card), where its weights are and how to build it.

    ``loader(weights)`` returns the ready-to-use model built from the weights file it is given, or from
    the shipped weights when it is given ``None`` (resolved when it runs, so a changed weights folder
    is seen); :meth:`ModelRegistry.load` calls it at most once per process and file. ``trained`` is
    ``False`` for models that run without fitted weights or whose weights are absent; their outputs
    must say so. The text fields are those of :class:`ml.modelcard.ModelCard`.
    """

    name: str
    task: str
    version: str
    loader: Callable[[Path | None], Any]
    weights_path: Path | None = None
    licence: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    trained: bool = True
    data: str = ""
    command: str = ""
    limitations: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_card(
        cls,
        card: ModelCard,
        loader: Callable[[Path | None], Any],
        weights_path: Path | None = None,
        trained: bool | None = None,
    ) -> ModelSpec:
        """The spec of a model described by ``card``; trained when its weights file exists."""
        return cls(
            name=card.name,
            task=card.task,
            version=card.version,
            loader=loader,
            weights_path=weights_path,
            licence=card.licence,
            metrics=dict(card.metrics),
            description=card.description,
            trained=(weights_path is not None and Path(weights_path).is_file())
            if trained is None
            else trained,
            data=card.data,
            command=card.command,
            limitations=card.limitations,
            details=dict(card.details),
        )

    @property
    def card(self) -> ModelCard:
        """The model card of this spec (what ``python -m ml models describe`` shows)."""
        return ModelCard(
            name=self.name,
            task=self.task,
            version=self.version,
            description=self.description,
            data=self.data,
            command=self.command,
            licence=self.licence,
            limitations=self.limitations,
            metrics=_json_safe(dict(self.metrics)),
            weights=Path(self.weights_path).name if self.weights_path is not None else None,
            weights_sha256=self.weights_sha256,
            details=_json_safe(dict(self.details)),
        )

    @property
    def weights_sha256(self) -> str | None:
        """SHA-256 of the shipped weights file; ``None`` without weights."""
        return weights_sha256(self.weights_path)


def weights_file(weights: Path | None, shipped: Path, missing: str) -> Path:
    """The file a loader builds from: ``weights`` when given, else the ``shipped`` file, which must
    exist; ``missing`` says what is absent and how to make it (``{name}``: the file's name)."""
    path = Path(weights) if weights is not None else Path(shipped)
    if not path.is_file():
        raise FileNotFoundError(missing.format(name=path.name))
    return path


_sha256_cache: dict[tuple[str, int, int], str] = {}
_sha256_lock = threading.Lock()


def weights_sha256(path: Path | str | None) -> str | None:
    """SHA-256 of a weights file (a folder: of its files in name order), cached per path, size and
    modification time; ``None`` when there is no such file."""
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        return None
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _sha256_lock:
        if key in _sha256_cache:
            return _sha256_cache[key]
    if path.is_dir():
        digest = hashlib.sha256()
        for member in sorted(item for item in path.iterdir() if item.is_file()):
            digest.update(member.name.encode() + b"\0" + file_sha256(member).encode())
        value = digest.hexdigest()
    else:
        value = file_sha256(path)
    with _sha256_lock:
        _sha256_cache[key] = value
    return value


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
        self._loaded: dict[tuple[str, str | None], Any] = {}
        self._load_locks: dict[tuple[str, str | None], threading.Lock] = {}
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

    def _weights(self, spec: ModelSpec, weights: Path | str | None) -> Path | None:
        if weights is None:
            return spec.weights_path
        path = Path(weights).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"The weights file {path.name} of model '{spec.name}' does not exist.")
        return path.resolve()

    def load(self, name: str, weights: Path | str | None = None) -> Any:
        """The model built from ``weights`` (default: the shipped file), loaded once per process and
        file and cached: this is how workers keep models in memory between jobs."""
        spec = self.spec(name)
        path = self._weights(spec, weights)
        key = (name, str(path) if weights is not None else None)
        with self._lock:
            if key in self._loaded:
                return self._loaded[key]
            load_lock = self._load_locks.setdefault(key, threading.Lock())
        # A lock per model and file lets different models load in parallel while each loads once.
        with load_lock:
            with self._lock:
                if key in self._loaded:
                    return self._loaded[key]
            # The loader resolves None to the shipped weights itself, at load time.
            model = spec.loader(None if weights is None else path)
            with self._lock:
                self._loaded[key] = model
            return model

    def discovery_errors(self) -> dict[str, str]:
        """Pipelines whose ``models`` module failed to import, with the error."""
        self._discover()
        with self._lock:
            return dict(self._discovery_errors)

    def is_loaded(self, name: str, weights: Path | str | None = None) -> bool:
        """Whether ``load(name, weights)`` has already built the model in this process."""
        self.spec(name)
        key = (name, str(Path(weights).expanduser().resolve()) if weights is not None else None)
        with self._lock:
            return key in self._loaded

    def unload(self, name: str) -> None:
        """Forget every cached copy of the model (the next ``load`` rebuilds it)."""
        with self._lock:
            for key in [key for key in self._loaded if key[0] == name]:
                del self._loaded[key]

    def describe(self, name: str, weights: Path | str | None = None) -> dict[str, Any]:
        """JSON-safe provenance: the model card with the SHA-256 of the weights that ``load(name,
        weights)`` uses, and ``trained``. Only the file's name appears, never a server path."""
        spec = self.spec(name)
        path = self._weights(spec, weights)
        card = spec.card.as_dict()
        del card["format"]
        return {
            **card,
            "weights": path.name if path is not None else None,
            "weights_sha256": weights_sha256(path),
            "trained": spec.trained if weights is None else True,
        }


registry = ModelRegistry()
