"""Normality models in the shared registry (imported by :mod:`ml.registry` on first use).

* ``normality-autoencoder-128`` — the embedded normalizer, trained by
  ``python -m ml normality train-normalizer``; weights ``<weights>/normality/autoencoder-128.pt``.
* ``normality-inpainting-128`` — the default normalizer: hides the mouth–nose region and reconstructs
  it from the rest of the face (Hayajneh et al. 2025); trained by ``python -m ml normality
  train-inpainter``; weights ``<weights>/normality/inpainting-128.pt``.
* ``normality-stylegan2-ffhq`` — a StyleGAN2 generator from an operator-provided checkpoint
  (``$FACET_STYLEGAN2_WEIGHTS``, default ``<weights>/normality/stylegan2-ffhq.pt``; see docs/normality.md
  for the key layout); ``$FACET_STYLEGAN2_SIZE`` (default 1024) when the file carries no config.
* ``normality-rating-regressor`` — fitted by ``python -m ml normality fit-regressor``; until real 1–7
  normality ratings exist it is fitted on MEBeauty attractiveness ratings rescaled to 1–7.

Nothing is loaded here; ``trained`` reflects whether the weights file exists at registration.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from ml.config import weights_dir
from ml.model_names import (
    NORMALITY_AUTOENCODER,
    NORMALITY_INPAINTING,
    NORMALITY_REGRESSOR,
    NORMALITY_STYLEGAN2,
)
from ml.modelcard import ModelCard, installed_card
from ml.registry import ModelSpec, registry, weights_file

AUTOENCODER_MODEL = NORMALITY_AUTOENCODER
INPAINTING_MODEL = NORMALITY_INPAINTING
STYLEGAN2_MODEL = NORMALITY_STYLEGAN2
REGRESSOR_MODEL = NORMALITY_REGRESSOR
STYLEGAN2_WEIGHTS_ENV = "FACET_STYLEGAN2_WEIGHTS"
STYLEGAN2_SIZE_ENV = "FACET_STYLEGAN2_SIZE"


def normality_weights_dir() -> Path:
    return weights_dir() / "normality"


def autoencoder_weights_path() -> Path:
    return normality_weights_dir() / "autoencoder-128.pt"


def inpainting_weights_path() -> Path:
    return normality_weights_dir() / "inpainting-128.pt"


def stylegan2_weights_path() -> Path:
    configured = os.environ.get(STYLEGAN2_WEIGHTS_ENV)
    return Path(configured).expanduser() if configured else normality_weights_dir() / "stylegan2-ffhq.pt"


def regressor_path() -> Path:
    return normality_weights_dir() / "rating-regressor.joblib"


def _load_autoencoder(weights: Path | None) -> Any:
    from ml.normality.autoencoder import load_autoencoder

    return load_autoencoder(Path(weights) if weights is not None else autoencoder_weights_path())[0]


def _load_inpainter(weights: Path | None) -> Any:
    from ml.normality.inpainting import load_inpainter

    return load_inpainter(Path(weights) if weights is not None else inpainting_weights_path())[0]


def _load_stylegan2(weights: Path | None) -> Any:
    """``(generator, w_avg, w_std)``; w_avg from the file or from 10,000 mapping samples."""
    from ml.normality.stylegan2 import load_generator

    path = weights_file(
        weights,
        stylegan2_weights_path(),
        "No StyleGAN2 checkpoint ({name}). Convert official FFHQ weights to the rosinality g_ema layout "
        f"and set {STYLEGAN2_WEIGHTS_ENV} (see docs/normality.md).",
    )
    generator, w_avg = load_generator(
        path, default_config={"size": int(os.environ.get(STYLEGAN2_SIZE_ENV, "1024"))}
    )
    computed_avg, w_std = generator.mean_latent(10_000)
    return generator, (w_avg if w_avg is not None else computed_avg), float(w_std)


def _load_regressor(weights: Path | None) -> Any:
    import joblib

    path = weights_file(
        weights,
        regressor_path(),
        "No fitted rating regressor ({name}). Fit one with: python -m ml normality extract-features "
        "--data DIR --out features.csv, then python -m ml normality fit-regressor --features features.csv",
    )
    return joblib.load(path)


_RESEARCH_ONLY = "Weights trained on MEBeauty (non-commercial research only) and FASSEG: research use only."

registry.register(
    ModelSpec.from_card(
        installed_card(autoencoder_weights_path())
        or ModelCard(
            name=AUTOENCODER_MODEL,
            task="normality",
            version="untrained",
            description="Convolutional autoencoder of normal faces at 128 px; decoder = generator, "
            "encoder = start latent.",
            data="none yet: no weights are installed",
            command="python -m ml normality train-normalizer --data DIR",
            licence=_RESEARCH_ONLY,
            limitations="Not trained: no normality score can be computed.",
        ),
        _load_autoencoder,
        weights_path=autoencoder_weights_path(),
    )
)
registry.register(
    ModelSpec.from_card(
        installed_card(inpainting_weights_path())
        or ModelCard(
            name=INPAINTING_MODEL,
            task="normality",
            version="untrained",
            description="U-Net that reconstructs the hidden mouth-nose region of an aligned 128 px face "
            "from the rest of the face (inpainting normalization, Hayajneh et al. 2025).",
            data="none yet: no weights are installed",
            command="python -m ml normality train-inpainter --data DIR",
            licence=_RESEARCH_ONLY,
            limitations="Not trained: no normality score can be computed.",
        ),
        _load_inpainter,
        weights_path=inpainting_weights_path(),
    )
)
registry.register(
    ModelSpec.from_card(
        ModelCard(
            name=STYLEGAN2_MODEL,
            task="normality",
            version="1",
            description="Native PyTorch StyleGAN2 generator (rosinality g_ema key layout) for "
            "Hayajneh/Boyaci inversion.",
            data="FFHQ (70,000 faces), official NVIDIA training; operator-provided, never shipped.",
            command=f"convert the official FFHQ weights to the rosinality g_ema layout and set "
            f"{STYLEGAN2_WEIGHTS_ENV} (docs/normality.md)",
            licence="Official FFHQ StyleGAN2 weights: NVIDIA Source Code License-NC (operator-provided).",
            limitations="Not measured by Facet; available only where an operator installed the checkpoint.",
        ),
        _load_stylegan2,
        weights_path=stylegan2_weights_path(),
    )
)
registry.register(
    ModelSpec.from_card(
        installed_card(regressor_path())
        or ModelCard(
            name=REGRESSOR_MODEL,
            task="normality",
            version="untrained",
            description="Rating regressor on Boyaci features.",
            data="none yet: not fitted",
            command="python -m ml normality extract-features --data DIR --out features.csv, then "
            "python -m ml normality fit-regressor --features features.csv",
            licence="Fitted on MEBeauty ratings: non-commercial research only.",
            limitations="Not fitted: the score S is given without a 1-7 rating.",
        ),
        _load_regressor,
        weights_path=regressor_path(),
    )
)


def residual_reference(name: str, weights: Path | str | None = None) -> Any:
    """The standardized-residual reference stored beside the normalizer's weights (the shipped file
    when ``weights`` is ``None``), or ``None`` when it has none; read once per process and file."""
    from ml.registry import registry

    path = Path(weights) if weights is not None else registry.spec(name).weights_path
    if path is None:
        return None
    return _cached_reference(str(Path(path).resolve()))


@functools.lru_cache(maxsize=8)
def _cached_reference(weights: str) -> Any:
    from ml.normality.residual_reference import load_residual_reference, residual_reference_path

    return load_residual_reference(residual_reference_path(Path(weights)))
