"""The 1–7 rating against the London set's human mean ratings, which no regressor learnt from (report §21.2).

``python scripts/normality_rating_london.py --data DIR --setting NAME WEIGHTS REGRESSOR [--setting …]``
``[--out FILE]``
scores each London neutral studio photo with each setting (normalizer weights and rating regressor, the
analysis as the worker runs it: the regressor's K and step counts) and prints, per setting, the Pearson
and Spearman correlation and the mean absolute difference between the rating and the photo's mean rating
(``london/faces.csv``: 2,513 raters, 1–7, attractiveness, as MEBeauty's ratings the regressors learnt).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from ml.core.imageio import load_image
    from ml.normality.analysis import analyze_normality
    from ml.normality.regression import pearson_and_mae

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="Data directory holding london/.")
    parser.add_argument(
        "--setting", nargs=3, action="append", required=True, metavar=("NAME", "WEIGHTS", "REGRESSOR")
    )
    parser.add_argument("--limit", type=int, help="Only the first N photos.")
    parser.add_argument("--out", help="Write the JSON report here too.")
    args = parser.parse_args()
    london = Path(args.data) / "london"
    with (london / "faces.csv").open(newline="") as handle:
        human = {row["face"]: float(row["mean_rating"]) for row in csv.DictReader(handle)}
    photos = sorted((london / "neutral").glob("*.jpg"))[: args.limit]
    report: dict[str, dict] = {}
    for name, weights, regressor in args.setting:
        ratings: dict[str, float] = {}
        for photo in photos:
            analysis = analyze_normality(load_image(photo), weights=weights, regressor_weights=regressor)
            ratings[photo.stem] = float(analysis.data["rating"]["value"])
        faces = sorted(ratings)
        predicted = np.array([ratings[face] for face in faces])
        observed = np.array([human[face] for face in faces])
        # The same R and MAE as the regressors' cross-validation figures.
        pearson_r, mae = pearson_and_mae(predicted, observed)
        report[name] = {
            "weights": weights,
            "regressor": regressor,
            "photos": len(faces),
            "pearson_r": pearson_r,
            "spearman_rho": float(spearmanr(predicted, observed).statistic),
            "mae": mae,
            "ratings": ratings,
        }
        print(
            f"{name}: R {report[name]['pearson_r']:.3f}, rho {report[name]['spearman_rho']:.3f}, "
            f"MAE {report[name]['mae']:.3f} ({len(faces)} photos)"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
