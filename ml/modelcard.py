"""One machine-readable model card format for every model Facet ships or trains.

A card is a JSON file beside the weights, named after them (``unet_wds.pt`` → ``unet_wds.card.json``).
The registry builds each model's description from it, the contract tests check it, and the Markdown
``MODEL_CARD.md`` beside it is the human-readable account. Fields (all required; ``metrics`` and
``details`` may be empty for a model that was never measured):

* ``format``: ``"facet-model-card/1"``
* ``name``, ``task``, ``version``: the registry name (:mod:`ml.model_names`), what it does, which build
* ``weights``: the weights file name beside the card, ``weights_sha256``: its SHA-256
* ``description``: the method, with its paper
* ``data``: what it learnt from (data sets, sizes, labels), ``command``: how to rebuild the weights
* ``licence``: of the code and of the weights (the data's licence travels with the weights)
* ``metrics``: measured figures, each saying on what data; ``limitations``: what it must not be used for
* ``details``: anything a loader or a report needs besides (training configuration, input size, ...)

Models without a file of their own (a pip-installed predictor, a geometric baseline, an
operator-provided checkpoint) carry the same card in code (:class:`ModelCard` built in their
``models.py``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

CARD_FORMAT = "facet-model-card/1"
CARD_SUFFIX = ".card.json"


class ModelCardError(ValueError):
    """A card file is missing fields or is not a Facet model card."""


@dataclass(frozen=True)
class ModelCard:
    name: str
    task: str
    version: str
    description: str
    data: str
    command: str
    licence: str
    limitations: str
    metrics: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    weights_sha256: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"format": CARD_FORMAT, **asdict(self)}

    def missing(self) -> list[str]:
        """Names of the text fields left empty (a complete card has none)."""
        texts = ("name", "task", "version", "description", "data", "command", "licence", "limitations")
        return [name for name in texts if not str(getattr(self, name) or "").strip()]


def card_path(weights: Path) -> Path:
    """Where the card of ``weights`` lives: beside it, ``<stem>.card.json``."""
    weights = Path(weights)
    return weights.with_name(weights.stem + CARD_SUFFIX)


def installed_card(weights: Path) -> ModelCard | None:
    """The card beside an installed weights file; None when there is none (the model is untrained here)."""
    path = card_path(weights)
    return read_card(path) if path.is_file() else None


def read_card(path: Path) -> ModelCard:
    """The card in ``path``; :class:`ModelCardError` for another format or a missing field."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelCardError(f"Model card {path.name} cannot be read: {error}") from error
    if not isinstance(document, dict) or document.get("format") != CARD_FORMAT:
        raise ModelCardError(f"{path.name} is not a Facet model card (format {CARD_FORMAT!r}).")
    known = {item.name for item in fields(ModelCard)}
    unknown = sorted(set(document) - known - {"format"})
    if unknown:
        raise ModelCardError(f"Model card {path.name} has unknown fields: {', '.join(unknown)}.")
    try:
        card = ModelCard(**{key: value for key, value in document.items() if key in known})
    except TypeError as error:
        raise ModelCardError(f"Model card {path.name} lacks a field: {error}") from error
    if card.missing():
        raise ModelCardError(f"Model card {path.name} leaves empty: {', '.join(card.missing())}.")
    return card


def write_card(path: Path, card: ModelCard) -> Path:
    """Write ``card`` as JSON (sorted metric keys stay as given); returns the path."""
    if card.missing():
        raise ModelCardError(f"A model card needs {', '.join(card.missing())}.")
    path = Path(path)
    path.write_text(json.dumps(card.as_dict(), indent=2, ensure_ascii=False) + "\n")
    return path
