"""Normality models in the shared registry (imported by :mod:`ml.registry` on first use).

* ``normality-autoencoder-128`` — the embedded normalizer, trained by
  ``python -m ml normality train-normalizer``; weights ``<weights>/normality/autoencoder-128.pt``.
* ``normality-stylegan2-ffhq`` — a StyleGAN2 generator from an operator-provided checkpoint
  (``$FACET_STYLEGAN2_WEIGHTS``, default ``<weights>/normality/stylegan2-ffhq.pt``; see docs/normality.md
  for the key layout); ``$FACET_STYLEGAN2_SIZE`` (default 1024) when the file carries no config.
* ``normality-rating-regressor`` — fitted by ``python -m ml normality fit-regressor``; until real 1–7
  normality ratings exist it is fitted on MEBeauty attractiveness ratings rescaled to 1–7.

Nothing is loaded here; ``trained`` reflects whether the weights file exists at registration.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ml.config import weights_dir
from ml.registry import ModelSpec, registry

AUTOENCODER_MODEL = "normality-autoencoder-128"
STYLEGAN2_MODEL = "normality-stylegan2-ffhq"
REGRESSOR_MODEL = "normality-rating-regressor"
STYLEGAN2_WEIGHTS_ENV = "FACET_STYLEGAN2_WEIGHTS"
STYLEGAN2_SIZE_ENV = "FACET_STYLEGAN2_SIZE"


def normality_weights_dir() -> Path:
    return weights_dir() / "normality"


def autoencoder_weights_path() -> Path:
    return normality_weights_dir() / "autoencoder-128.pt"


def stylegan2_weights_path() -> Path:
    configured = os.environ.get(STYLEGAN2_WEIGHTS_ENV)
    return Path(configured).expanduser() if configured else normality_weights_dir() / "stylegan2-ffhq.pt"


def regressor_path() -> Path:
    return normality_weights_dir() / "rating-regressor.joblib"


def model_card_path(weights: Path) -> Path:
    return weights.with_suffix(".card.json")


def _card_metrics(weights: Path) -> dict[str, Any]:
    card = model_card_path(weights)
    if not card.is_file():
        return {}
    return dict(json.loads(card.read_text()).get("metrics", {}))


def _load_autoencoder() -> Any:
    from ml.normality.autoencoder import load_autoencoder

    return load_autoencoder(autoencoder_weights_path())[0]


def _load_stylegan2() -> Any:
    """``(generator, w_avg, w_std)``; w_avg from the file or from 10,000 mapping samples."""
    from ml.normality.stylegan2 import load_generator

    path = stylegan2_weights_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"No StyleGAN2 checkpoint at {path}. Convert official FFHQ weights to the rosinality g_ema "
            f"layout and set {STYLEGAN2_WEIGHTS_ENV} (see docs/normality.md)."
        )
    generator, w_avg = load_generator(
        path, default_config={"size": int(os.environ.get(STYLEGAN2_SIZE_ENV, "1024"))}
    )
    computed_avg, w_std = generator.mean_latent(10_000)
    return generator, (w_avg if w_avg is not None else computed_avg), float(w_std)


def _load_regressor() -> Any:
    import joblib

    path = regressor_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"No fitted rating regressor at {path}. Fit one with: python -m ml normality extract-features "
            "--data DIR --out features.csv, then python -m ml normality fit-regressor --features features.csv"
        )
    return joblib.load(path)


registry.register(
    ModelSpec(
        name=AUTOENCODER_MODEL,
        task="normality",
        version="2",
        loader=_load_autoencoder,
        weights_path=autoencoder_weights_path(),
        licence="Weights trained on MEBeauty (non-commercial research only) and FASSEG: research use only.",
        metrics=_card_metrics(autoencoder_weights_path()),
        description="Convolutional autoencoder of normal faces at 128 px; "
        "decoder = generator, encoder = start latent.",
        trained=autoencoder_weights_path().is_file(),
    )
)
registry.register(
    ModelSpec(
        name=STYLEGAN2_MODEL,
        task="normality",
        version="1",
        loader=_load_stylegan2,
        weights_path=stylegan2_weights_path(),
        licence="Official FFHQ StyleGAN2 weights: NVIDIA Source Code License-NC (operator-provided).",
        description="Native PyTorch StyleGAN2 generator (rosinality g_ema key layout) "
        "for Hayajneh/Boyaci inversion.",
        trained=stylegan2_weights_path().is_file(),
    )
)
registry.register(
    ModelSpec(
        name=REGRESSOR_MODEL,
        task="normality",
        version="2",
        loader=_load_regressor,
        weights_path=regressor_path(),
        licence="Fitted on MEBeauty ratings: non-commercial research only.",
        metrics=_card_metrics(regressor_path()),
        description="Rating regressor on Boyaci features; fitted on MEBeauty ATTRACTIVENESS ratings "
        "rescaled to 1-7 until real normality ratings exist.",
        trained=regressor_path().is_file(),
    )
)
