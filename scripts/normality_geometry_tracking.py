"""Exploratory: do the geometry landmarks see the simulated defects, and how far outside normal geometry?

For held-out MEBeauty val faces (the aligned-face cache of ``train-normalizer --cache-dir``), each defect
of ``validate`` (same defects, same seeds) is put on the face and the landmarks of
:func:`ml.normality.geometry.geometry_landmarks` found on the clean and the altered crop. Per defect: the
median largest landmark move against the clean face (pixels of the 128-px crop), the median largest
distance of a nose–mouth landmark from its predicted normal position (standard deviations) for clean and
altered faces, and the AUROC of that distance as a detector of the defect. No setting is chosen from it.

    python scripts/normality_geometry_tracking.py --cache-dir var/normality/cache \\
        --geometry var/normality/normal-geometry-128.json --skip 100 --limit 100 \\
        --out docs/reports/normality-geometry-tracking-tuning.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.config import data_dir  # noqa: E402
from ml.normality.geometry import NormalGeometry, geometry_landmarks  # noqa: E402
from ml.normality.validation import DEFECTS, auroc, held_out_defect_faces  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", required=True, help="Aligned-face cache with the held-out faces.")
    parser.add_argument("--geometry", required=True, help="Normal-geometry file (fit-geometry).")
    parser.add_argument("--data", help="Data directory (default FACET_DATA_DIR).")
    parser.add_argument("--skip", type=int, default=100)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--out", help="Write the JSON here too.")
    args = parser.parse_args()
    data = Path(args.data) if args.data else data_dir()
    geometry = NormalGeometry.load(args.geometry)
    faces, _ = held_out_defect_faces(Path(args.cache_dir), data, args.skip, args.limit, "all")

    def landmarks(image: np.ndarray) -> np.ndarray:
        return geometry_landmarks(image, geometry.frame_centre, geometry.frame_scale)

    clean_distance: list[float] = []
    altered: dict[str, dict[str, list[float]]] = {name: {"distance": [], "move": []} for name in DEFECTS}
    for index, (image, points) in enumerate(faces):
        clean = landmarks(image)
        clean_distance.append(float(geometry.bounded(clean, np.inf)[1].max()))
        for name, simulate in DEFECTS.items():
            found = landmarks(simulate(image, points, index).image)
            altered[name]["distance"].append(float(geometry.bounded(found, np.inf)[1].max()))
            altered[name]["move"].append(float(np.linalg.norm(found - clean, axis=1).max()))
    report = {
        "data": f"{len(faces)} held-out MEBeauty val faces {args.skip}-{args.skip + len(faces) - 1} of the "
        "cache (SEMI-SYNTHETIC defects)",
        "geometry": {"file": args.geometry, **geometry.provenance},
        "median_largest_sd_clean": round(float(np.median(clean_distance)), 3),
        "defects": {
            name: {
                "median_largest_move_px": round(float(np.median(rows["move"])), 3),
                "median_largest_sd": round(float(np.median(rows["distance"])), 3),
                # A defect is detected when its largest distance exceeds the clean face's.
                "auroc_largest_sd": round(1.0 - auroc(rows["distance"], clean_distance), 3),
            }
            for name, rows in altered.items()
        },
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
