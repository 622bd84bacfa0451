"""Exploratory: how visible is each simulated defect, and is S worse where it is more visible?

For held-out MEBeauty val faces (the aligned-face cache of ``train-normalizer --cache-dir``), each defect
of ``validate`` (same defects, same seeds, same normalizer settings and fit pixels as the analysis) is
scored, and its visibility measured as the mean absolute change (8-bit levels, max over channels) inside
the scoring region. Prints and writes the share of faces whose S got worse per visibility tertile, and the
Spearman correlation of visibility with the change in S. No setting is chosen from it.

    python scripts/normality_defect_visibility.py --cache-dir var/normality/cache --skip 100 --limit 100 \
        --out docs/reports/normality-defect-visibility-tuning.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.config import data_dir  # noqa: E402
from ml.model_names import NORMALITY_AUTOENCODER  # noqa: E402
from ml.normality.analysis import build_normalizer, default_fit_pixels  # noqa: E402
from ml.normality.scoring import region_mask, score_pair  # noqa: E402
from ml.normality.settings import DEFAULT_ADAPT_STEPS, DEFAULT_PROJECTION_STEPS  # noqa: E402
from ml.normality.validation import DEFECTS, held_out_defect_faces  # noqa: E402

REGION = "mouth_nose"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", required=True, help="Aligned-face cache with the held-out faces.")
    parser.add_argument("--data", help="Data directory (default FACET_DATA_DIR).")
    parser.add_argument("--weights", help="Another autoencoder weights file than the shipped one.")
    parser.add_argument("--skip", type=int, default=100)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    data = Path(args.data) if args.data else data_dir()
    fit_pixels = default_fit_pixels(NORMALITY_AUTOENCODER)
    faces, fits = held_out_defect_faces(Path(args.cache_dir), data, args.skip, args.limit, fit_pixels)
    normalizer = build_normalizer(
        NORMALITY_AUTOENCODER, args.weights, DEFAULT_PROJECTION_STEPS, DEFAULT_ADAPT_STEPS
    )
    rows: list[dict[str, object]] = []
    for index, ((image, points), fit) in enumerate(zip(faces, fits, strict=True)):
        region = region_mask(points, image.shape[:2], REGION) & fit
        normal = score_pair(
            image, normalizer.normalized_image(image, observed=fit), points, REGION, observed=fit
        ).score
        for name, simulate in DEFECTS.items():
            defect = simulate(image, points, index)
            if not defect.mask.any():
                continue
            change = np.abs(defect.image.astype(np.float32) - image.astype(np.float32)).max(axis=-1)
            altered = score_pair(
                defect.image,
                normalizer.normalized_image(defect.image, observed=fit),
                points,
                REGION,
                observed=fit,
            ).score
            rows.append(
                {
                    "face": index + args.skip,
                    "defect": name,
                    "visibility": float(change[region].mean()),
                    "s_normal": float(normal),
                    "s_altered": float(altered),
                }
            )
        print(f"{index + 1}/{len(faces)}", file=sys.stderr)
    summary = {}
    for name in DEFECTS:
        subset = [row for row in rows if row["defect"] == name]
        visibility = np.array([row["visibility"] for row in subset])
        drop = np.array([row["s_normal"] - row["s_altered"] for row in subset])
        edges = np.quantile(visibility, [1 / 3, 2 / 3])
        tertiles = np.digitize(visibility, edges)
        summary[name] = {
            "faces": len(subset),
            "worse_fraction": float((drop > 0).mean()),
            "visibility_tertile_edges": [round(float(edge), 2) for edge in edges],
            "worse_fraction_by_visibility_tertile": [
                round(float((drop[tertiles == tertile] > 0).mean()), 3) for tertile in range(3)
            ],
            "median_visibility": round(float(np.median(visibility)), 2),
            "spearman_visibility_vs_drop_in_s": round(float(spearmanr(visibility, drop)[0]), 3),
        }
    document = {
        "what": "EXPLORATORY (no setting chosen from it): simulated defects' visibility (mean absolute "
        "change in 8-bit levels inside the scoring region) against whether S got worse; SEMI-SYNTHETIC",
        "faces": f"held-out MEBeauty val faces {args.skip}-{args.skip + len(faces) - 1} (aligned cache)",
        "normalizer": {"weights": args.weights or "shipped", "fit_pixels": fit_pixels},
        "summary": summary,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(document, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
