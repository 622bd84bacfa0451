"""Registry entry of the default wrinkle model (U-Net + weighted deep supervision).

The weights are ``<weights_dir>/wrinkles/unet_wds.pt``; the measured figures beside them
(``unet_wds.json``, written by ``python -m ml wrinkles card``) become the registry metrics. Without
the weights file the model is registered as untrained and loading it fails with a clear message.
"""

from __future__ import annotations

import json
from typing import Any

from ml.config import weights_dir
from ml.registry import ModelSpec, registry

DEFAULT_WRINKLE_MODEL = "wrinkles-unet-wds"
WEIGHTS_FILE = weights_dir() / "wrinkles" / "unet_wds.pt"
METRICS_FILE = WEIGHTS_FILE.with_suffix(".json")


def _load_default() -> Any:
    if not WEIGHTS_FILE.is_file():
        raise FileNotFoundError(
            f"No trained wrinkle weights at {WEIGHTS_FILE}; train them with `python -m ml wrinkles train`."
        )
    from ml.wrinkles.train import load_checkpoint

    return load_checkpoint(WEIGHTS_FILE)


def _measured_metrics() -> dict[str, Any]:
    if not METRICS_FILE.is_file():
        return {}
    return json.loads(METRICS_FILE.read_text())


registry.register(
    ModelSpec(
        name=DEFAULT_WRINKLE_MODEL,
        task="wrinkle-segmentation",
        version="0.2.0",
        loader=_load_default,
        weights_path=WEIGHTS_FILE,
        licence="Non-commercial research use only: trained on semi-synthetic images (Apache-2.0 wrinkle "
        "masks rendered onto MEBeauty faces, which are licensed for non-commercial research only).",
        metrics=_measured_metrics(),
        description="U-Net with weighted deep supervision (Kim et al. 2023), RGB + texture-map input; "
        "figures are semi-synthetic.",
        trained=WEIGHTS_FILE.is_file(),
    )
)
