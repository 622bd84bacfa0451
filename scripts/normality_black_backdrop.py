"""Exploratory: is a pure-black studio backdrop taken for digital fill, and how much does it move S?

Each London neutral photo is scored as photographed and with its uniform grey backdrop flood-filled to
pure black from the photo's corners and side midpoints (a stand-in for a clipped black clinical backdrop;
tolerance ±10 levels per channel, 4-connected). Reports per photo the black share of the picture, the
share of the face outline the analysis calls digital fill, its "edited" flag, and S both ways. No setting
is chosen from it.

    python scripts/normality_black_backdrop.py --limit 8 --out docs/reports/normality-black-backdrop.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.config import data_dir  # noqa: E402
from ml.core.imageio import load_image  # noqa: E402
from ml.normality.analysis import analyze_normality  # noqa: E402

TOLERANCE = (10, 10, 10)


def black_backdrop(image: np.ndarray) -> np.ndarray:
    """``image`` with the backdrop connected to its corners and side midpoints set to pure black."""
    height, width = image.shape[:2]
    filled = np.ascontiguousarray(image.copy())
    mask = np.zeros((height + 2, width + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_FIXED_RANGE | (255 << 8)
    for seed in ((0, 0), (width - 1, 0), (0, height // 2), (width - 1, height // 2)):
        cv2.floodFill(filled, mask, seed, (0, 0, 0), TOLERANCE, TOLERANCE, flags=flags)
    return filled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="Data directory (default FACET_DATA_DIR).")
    parser.add_argument("--limit", type=int, default=8, help="London neutral photos, in file order (8).")
    parser.add_argument("--out", help="Write the JSON here too.")
    args = parser.parse_args()
    data = Path(args.data) if args.data else data_dir()
    rows = []
    for path in sorted((data / "london" / "neutral").glob("*.jpg"))[: args.limit]:
        image = load_image(path)
        black = black_backdrop(image)
        as_taken, on_black = (analyze_normality(photo, rating=False) for photo in (image, black))
        rows.append(
            {
                "face": path.stem,
                "black_share_of_photo": round(float((black.sum(axis=-1) == 0).mean()), 3),
                "fill_fraction": on_black.data["observed"]["fill_fraction"],
                "edited_fill": on_black.data["observed"]["edited_fill"],
                "score_as_taken": round(as_taken.data["score"], 4),
                "score_black_backdrop": round(on_black.data["score"], 4),
            }
        )
        print(rows[-1])
    changes = [abs(row["score_black_backdrop"] - row["score_as_taken"]) for row in rows]
    report = {
        "data": f"{len(rows)} London neutral studio photos, grey backdrop flood-filled to pure black",
        "flagged_as_edited": sum(row["edited_fill"] for row in rows),
        "median_abs_change_in_s": round(float(np.median(changes)), 4),
        "largest_abs_change_in_s": round(float(np.max(changes)), 4),
        "photos": rows,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
