"""Why S of a MEBeauty face differs between its 224-px crop and its original photo (issue 13, framing).

``python scripts/normality_crop_vs_original.py [--skip 0] [--limit 60] [--out FILE]``: for MEBeauty val
faces that have an original photo (in ``images.csv`` order after ``--skip``), scores the crop and the
original with the default analysis (as the worker does: autoencoder, default fit pixels, no rating) and
records, per photo, the properties that could explain the difference: the face's size in the photo
(inter-ocular distance of the detected landmarks), the share of the aligned crop and of the scoring region
that is the photo's own, the sharpness (variance of the Laplacian inside the scoring region) and the
texture (SD of luminance there). Writes the per-pair values and the Spearman correlation of each
property (crop / original ratio or difference) with ΔS = S(crop) − S(original) and with |ΔS|.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.stats import spearmanr

from ml.config import data_dir
from ml.core.imageio import load_image
from ml.core.landmarks import detect_faces_with_landmarks
from ml.core.subject import subject_landmarks
from ml.normality.analysis import analyze_normality


def _photo_properties(path: Path) -> dict[str, Any]:
    image = load_image(path)
    landmarks = subject_landmarks(detect_faces_with_landmarks(image))
    result = analyze_normality(image, rating=False)
    grey = cv2.cvtColor(result.aligned, cv2.COLOR_RGB2GRAY).astype(np.float64)
    region = result.region_mask
    return {
        "score": result.data["score"],
        "photo_px": list(image.shape[:2]),
        "inter_ocular_px": float(np.linalg.norm(landmarks[36:42].mean(0) - landmarks[42:48].mean(0))),
        "crop_fraction": result.data["observed"]["crop_fraction"],
        "region_fraction": result.data["observed"]["region_fraction"],
        "sharpness": float(cv2.Laplacian(grey, cv2.CV_64F)[region].var()),
        "texture": float(grey[region].std()),
    }


PROPERTIES = {
    "face size ratio (crop / original inter-ocular px)": lambda c, o: (
        c["inter_ocular_px"] / o["inter_ocular_px"]
    ),
    "crop's share of photo pixels in the aligned crop": lambda c, o: c["crop_fraction"],
    "crop's share of the scoring region in the photo": lambda c, o: c["region_fraction"],
    "sharpness ratio (crop / original)": lambda c, o: c["sharpness"] / o["sharpness"],
    "texture difference (crop - original)": lambda c, o: c["texture"] - o["texture"],
    "S of the original": lambda c, o: o["score"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="Data directory (default FACET_DATA_DIR).")
    parser.add_argument("--skip", type=int, default=0)
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--out", type=Path, help="Write the JSON here too.")
    args = parser.parse_args(argv)
    data = args.data or data_dir()
    with (data / "mebeauty" / "images.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "val" and row["original"]]
    pairs = []
    for row in rows[args.skip :][: args.limit]:
        crop = _photo_properties(data / "mebeauty" / row["image"])
        original = _photo_properties(data / "mebeauty" / row["original"])
        pairs.append({"image": row["image"], "crop": crop, "original": original})
        print(f"{row['image']}: ΔS {crop['score'] - original['score']:+.3f}", file=sys.stderr)
    differences = np.array([pair["crop"]["score"] - pair["original"]["score"] for pair in pairs])
    correlations = {}
    for name, measure in PROPERTIES.items():
        values = [measure(pair["crop"], pair["original"]) for pair in pairs]
        correlations[name] = {
            "range": [float(min(values)), float(max(values))],
            "spearman_with_difference": float(spearmanr(values, differences).statistic),
            "spearman_with_abs_difference": float(spearmanr(values, np.abs(differences)).statistic),
        }
    report = {
        "command": "python scripts/normality_crop_vs_original.py " + " ".join(argv or sys.argv[1:]),
        "pairs_count": len(pairs),
        "median_abs_difference": float(np.median(np.abs(differences))),
        "mean_difference": float(differences.mean()),
        "crop_lower_fraction": float((differences < 0).mean()),
        "correlations": correlations,
        "pairs": pairs,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({key: value for key, value in report.items() if key != "pairs"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
