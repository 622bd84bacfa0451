"""How much of the FASSEG yaw error is the file name's, not the estimator's? (|yaw| ≤ 45°)

``python scripts/fasseg_label_noise.py [--pose-report FILE] [--out docs/reports]`` reads the per-photo
yaw estimates of every landmark model from the head-pose report (default
``docs/reports/head-pose-fasseg.json``, written by ``python -m ml landmarks report pose``) and, for the
photos with |file-name yaw| ≤ 45°, measures:

1. **Variance components** of the error (estimate − file-name yaw): a linear mixed model with a random
   intercept per session (statsmodels ``MixedLM``). The between-session SD is an offset shared by all of a
   session's photos — where the subject's head pointed when looking at the 0° marker, plus any bias of the
   estimator on that person's face; the within-session SD is what is left photo by photo.
2. **Leave-one-out session offset**: each photo's error minus the mean error of the *other* photos of its
   session. Unlike the report's "relative to own 0°" figure, no photo is corrected by its own estimate.
3. **An independent witness, the human masks.** FASSEG's hand-drawn masks place the nose and both eyes;
   the horizontal offset of the nose centroid from the eyes' midpoint, over the distance between the eyes,
   grows with the head's turn. It is measured without any landmark model. Partial correlations (pingouin)
   say which yaw it follows: the estimate with the file-name yaw held fixed, and the file-name yaw with
   the estimate held fixed. If the file names were exact and the estimator noisy, only the second would
   be positive.

Writes ``<out>/head-pose-fasseg-label-noise.{json,md}``. Nothing is fitted or tuned on FASSEG.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MAX_ABS_YAW = 45.0
EYES, NOSE = 3, 4  # FASSEG class indices (fasseg/classes.json)


def mask_nose_offset(mask_path: Path) -> float | None:
    """Nose centroid's horizontal offset from the eyes' midpoint, in units of the eye distance.

    ``None`` when the mask does not show two eyes and a nose.
    """
    import cv2

    mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        return None
    if mask.ndim == 3:
        mask = mask[..., 0]
    count, _, stats, centroids = cv2.connectedComponentsWithStats((mask == EYES).astype(np.uint8))
    nose_x = np.nonzero(mask == NOSE)[1]
    if count < 3 or nose_x.size == 0:
        return None
    largest = np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1][:2] + 1
    eyes = centroids[largest]
    distance = float(np.linalg.norm(eyes[1] - eyes[0]))
    if distance <= 0:
        return None
    return float((nose_x.mean() - eyes[:, 0].mean()) / distance)


def analyse_model(photos: list[dict[str, Any]], masks: Path) -> dict[str, Any]:
    """Variance components, leave-one-out session offsets and mask partial correlations of one model."""
    import pandas as pd
    import pingouin
    import statsmodels.formula.api as smf

    table = pd.DataFrame(photos)
    table = table[table["detected"] & (table["yaw_truth"].abs() <= MAX_ABS_YAW)].copy()
    table["error"] = table["yaw"] - table["yaw_truth"]
    session_sum = table.groupby("session")["error"].transform("sum")
    session_count = table.groupby("session")["error"].transform("count")
    table["error_loo"] = table["error"] - (session_sum - table["error"]) / (session_count - 1)
    mixed = smf.mixedlm("error ~ 1", table, groups=table["session"]).fit()
    table["nose_offset"] = [mask_nose_offset(masks / f"{Path(name).stem}.png") for name in table["name"]]
    witnessed = table.dropna(subset=["nose_offset"])
    with_estimate = pingouin.partial_corr(witnessed, x="nose_offset", y="yaw", covar="yaw_truth")
    with_file_name = pingouin.partial_corr(witnessed, x="nose_offset", y="yaw_truth", covar="yaw")
    offsets = table.groupby("session")["error"].mean()
    return {
        "photos": len(table),
        "mean_abs_error": round(float(table["error"].abs().mean()), 2),
        "mean_abs_error_loo_session_offset": round(float(table["error_loo"].abs().mean()), 2),
        "between_session_sd": round(float(np.sqrt(mixed.cov_re.iloc[0, 0])), 2),
        "within_session_sd": round(float(np.sqrt(mixed.scale)), 2),
        "mean_error": round(float(table["error"].mean()), 2),
        "session_offsets": {session: round(float(value), 1) for session, value in offsets.items()},
        "photos_with_mask_witness": len(witnessed),
        "corr_mask_nose_with_estimate": round(
            float(np.corrcoef(witnessed["nose_offset"], witnessed["yaw"])[0, 1]), 3
        ),
        "corr_mask_nose_with_file_name": round(
            float(np.corrcoef(witnessed["nose_offset"], witnessed["yaw_truth"])[0, 1]), 3
        ),
        "partial_corr_with_estimate_given_file_name": {
            "r": round(float(with_estimate["r"].iloc[0]), 3),
            "p": float(f"{with_estimate['p_val'].iloc[0]:.2g}"),
        },
        "partial_corr_with_file_name_given_estimate": {
            "r": round(float(with_file_name["r"].iloc[0]), 3),
            "p": float(f"{with_file_name['p_val'].iloc[0]:.2g}"),
        },
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# FASSEG multipose: how much of the yaw error is the file name's",
        "",
        f"Command: `{report['command']}` (from the per-photo estimates of `{report['pose_report']}`).",
        "",
        f"Photos with |file-name yaw| ≤ {MAX_ABS_YAW:.0f}° (7 per session, 14 sessions of 7 people). Error = "
        "estimate − file-name yaw. *Between/within-session SD*: random-intercept mixed model (statsmodels "
        "MixedLM). *LOO session offset*: each photo's error minus the mean error of the other photos of "
        "its session. *Mask nose offset*: nose centroid minus the eyes' midpoint, horizontally, over the "
        "eye distance, from FASSEG's hand-drawn masks (no landmark model involved); partial correlations "
        "by pingouin.",
        "",
        "| model | photos | mean abs error | between-session SD | within-session SD | mean abs error, LOO "
        "session offset removed | r(mask nose, estimate) | r(mask nose, file name) | partial r(mask, "
        "estimate given file name) | partial r(mask, file name given estimate) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in report["models"].items():
        given_name = row["partial_corr_with_estimate_given_file_name"]
        given_estimate = row["partial_corr_with_file_name_given_estimate"]
        lines.append(
            f"| {name} | {row['photos']} | {row['mean_abs_error']}° | {row['between_session_sd']}° | "
            f"{row['within_session_sd']}° | {row['mean_abs_error_loo_session_offset']}° | "
            f"{row['corr_mask_nose_with_estimate']} | {row['corr_mask_nose_with_file_name']} | "
            f"{given_name['r']} (p {given_name['p']}) | {given_estimate['r']} (p {given_estimate['p']}) |"
        )
    first = next(iter(report["models"].values()))
    offsets = first["session_offsets"]
    listed = ", ".join(f"{session}: {value:+.1f}°" for session, value in offsets.items())
    people = sorted({session[:2] for session in offsets})
    same_side = sum(
        len({np.sign(value) for session, value in offsets.items() if session[:2] == person}) == 1
        for person in people
    )
    lines += [
        "",
        f"Mean error per session ({next(iter(report['models']))}): {listed}. The two sessions of "
        f"{same_side} of the {len(people)} people (first two digits) lean the same way.",
        "",
        report["reading"],
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pose-report", type=Path, default=Path("docs/reports/head-pose-fasseg.json"))
    parser.add_argument("--out", type=Path, default=Path("docs/reports"))
    args = parser.parse_args(argv)
    from bench.report import write_report
    from ml.config import data_dir_or_none

    root = data_dir_or_none()
    if root is None:
        parser.error("the research data directory is absent (set FACET_DATA_DIR)")
    masks = root / "fasseg" / "multipose" / "train" / "masks"
    pose = json.loads(args.pose_report.read_text())
    models = {name: analyse_model(model["photos"], masks) for name, model in pose["models"].items()}
    report = {
        "command": "python scripts/fasseg_label_noise.py "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "pose_report": str(args.pose_report),
        "max_abs_yaw": MAX_ABS_YAW,
        "models": models,
        "reading": (
            "Reading: most of the absolute error is an offset per session (between-session SD larger than "
            "the within-session SD), and the human masks follow the estimate, not the file name: with the "
            "file-name yaw held fixed, the nose offset drawn by hand still rises with the estimated yaw; "
            "with the estimate held fixed, it does not rise with the file-name yaw. The file names are the "
            "direction of a marker, not of the head; the absolute figure charges the estimator with that "
            "difference. Removing each session's offset measured on its *other* photos leaves the error "
            "in the LOO column."
        ),
    }
    write_report(args.out, "head-pose-fasseg-label-noise", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
