"""Why dlib-68 misses the issue-11 bar on landmarks68/einstein, and whether a general fix helps.

The default landmark path is YuNet → the calibrated HOG-style box
(:data:`ml.core.landmarks.HOG_BOX_FROM_FRAME`) → dlib's 68-point predictor on a 2×2 grid of boxes
(:data:`ml.core.landmarks.BOX_JITTER`), per-point median. On einstein it measures NME 0.0716 against the
acceptance bar 0.06.
``python scripts/dlib_einstein_study.py [--out docs/reports]``:

1. **Diagnosis** on the four landmarks68 faces: the error per face part (jaw, brows, nose, eyes, mouth);
   YuNet's face frame against the frame of the human labels (eye-to-mouth scale, roll, centre); the
   predictor started from the *human* frame (an oracle: is it the box or the image?), with and without
   the face levelled by the human eye line; and the spread of the default path's NME over 14 imperceptible
   resamplings of the same photo (scale 0.97–1.03, half-pixel shift; same YuNet frame).
2. **Candidates** (fixed before measuring, with the adoption rule below): box-jitter sets for the
   predictor's test-time median — one box, the shipped 2×2, a centre plus a 2^(3-1) fractional factorial
   (5), a centre plus the full 2^3 factorial (9) in (side ±5 %, dx ±0.05, dy ±0.05 eye-to-mouth units), a
   3×3 side × height grid (9), and the 2^3 design at ±10 %/±0.1 (9); crossed with contrast normalisation
   of the grey image the predictor reads (none, a 1–99 percentile stretch measured inside the box, CLAHE,
   global histogram equalisation).
3. **Rule**: a candidate is adopted only if landmarks300w val mean NME worsens by at most 0.0005, the London
   mean NME does not worsen, breakingbad, lenna and takeo stay ≤ 0.06, einstein reaches ≤ 0.06, and the
   landmark + pose + quality job stays within 30 ms per 12-MP photo; among those, the lowest val mean
   (landmarks300w test is not used to choose). dlib-68's landmarks300w figures are in-sample (dlib trained
   on those images); London and landmarks68 are out of sample.

Writes ``<out>/landmarks-einstein.{json,md}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ACCEPTANCE_NME = 0.06
VAL_TOLERANCE = 0.0005
JOB_BUDGET_MS = 30.0
FACE_PARTS = {
    "jaw": range(0, 17),
    "brows": range(17, 27),
    "nose": range(27, 36),
    "eyes": range(36, 48),
    "mouth": range(48, 68),
}
LANDMARKS68 = ("breakingbad", "einstein", "lenna", "takeo")

# (side factor, dx, dy in eye-to-mouth units) relative to the calibrated box. The shipped grid is centred on
# a box 0.04 higher than the calibration (BOX_JITTER); every other set shares that centre.
CENTRE = (1.0, 0.0, -0.04)


def _factorial(step_side: float, step_shift: float, half: bool) -> list[tuple[float, float, float]]:
    corners = []
    for a, b, c in itertools.product((-1, 1), repeat=3):
        if half and a * b != c:  # the 2^(3-1) fraction: dy's sign is the product of the other two
            continue
        corners.append((1.0 + a * step_side, b * step_shift, CENTRE[2] + c * step_shift))
    return corners


def jitter_sets() -> dict[str, list[tuple[float, float, float]]]:
    """The candidate box sets, by name (first: the shipped one)."""
    from ml.core.landmarks import BOX_JITTER

    return {
        "shipped 2×2 (4)": [(side, 0.0, shift) for side, shift in BOX_JITTER],
        "one box (1)": [CENTRE],
        "centre + 2^(3-1), ±5 % / ±0.05 (5)": [CENTRE, *_factorial(0.05, 0.05, half=True)],
        "centre + 2^3, ±5 % / ±0.05 (9)": [CENTRE, *_factorial(0.05, 0.05, half=False)],
        "3×3 side × height, ±5 % / ±0.05 (9)": [
            (side, 0.0, CENTRE[2] + shift) for side in (0.95, 1.0, 1.05) for shift in (-0.05, 0.0, 0.05)
        ],
        "centre + 2^3, ±10 % / ±0.1 (9)": [CENTRE, *_factorial(0.10, 0.10, half=False)],
    }


CONTRASTS = ("none", "stretch", "clahe", "equalize")


def normalise_contrast(region: np.ndarray, box: Sequence[float], kind: str) -> np.ndarray:
    """The predictor's input with its grey contrast normalised (``none``: unchanged).

    ``stretch`` maps the 1st–99th percentile of the grey values inside ``box`` to 0–255; ``clahe`` applies
    contrast-limited adaptive equalisation with tiles a quarter of the box wide; ``equalize`` equalises the
    whole region's histogram. The predictor reads grey, so the result is grey in three channels.
    """
    import cv2

    if kind == "none":
        return region
    grey = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)
    x0, y0, x1, y1 = (int(round(value)) for value in box)
    inside = grey[max(0, y0) : max(1, y1), max(0, x0) : max(1, x1)]
    if kind == "stretch":
        low, high = np.percentile(inside, (1, 99))
        scaled = (grey.astype(np.float32) - low) * 255.0 / max(high - low, 1.0)
        grey = np.clip(scaled, 0, 255).astype(np.uint8)
    elif kind == "clahe":
        tile = max((x1 - x0) / 4.0, 1.0)
        tiles = (max(1, round(grey.shape[1] / tile)), max(1, round(grey.shape[0] / tile)))
        grey = cv2.createCLAHE(clipLimit=2.0, tileGridSize=tiles).apply(grey)
    elif kind == "equalize":
        grey = cv2.equalizeHist(grey)
    else:
        raise ValueError(f"Unknown contrast normalisation {kind!r}")
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))


def study_landmarker(boxes: list[tuple[float, float, float]], contrast: str) -> Any:
    """dlib-68 on the default detector with ``boxes`` for the per-point median and ``contrast``, wrapped as
    the registry wraps it (working region, FaceMesh surface), so its timing is the default path's."""
    from ml.core.detection import DEFAULT_FACE_DETECTOR
    from ml.core.landmarks import (
        DlibLandmarker,
        FaceLandmarks,
        _box_from,
        _face_region_at_working_scale,
    )
    from ml.landmarks.mesh import WithFaceMesh
    from ml.registry import registry

    class Study(DlibLandmarker):
        def fit(self, image: np.ndarray, detection: Any) -> FaceLandmarks:
            centre, scale, relation = self.hog_box_frame(detection)
            region, origin, factor = _face_region_at_working_scale(image, centre, relation["side"] * scale)
            local_centre, local_scale = (centre - origin) * factor, scale * factor
            region = normalise_contrast(region, _box_from(local_centre, local_scale, relation), contrast)
            predictions = [
                self.predict(
                    region,
                    _box_from(local_centre, local_scale, {**relation, "dx": relation["dx"] + dx}, side, dy),
                )
                for side, dx, dy in boxes
            ]
            landmarks = np.median(predictions, axis=0) / factor + origin
            return FaceLandmarks(
                box=detection.box, score=detection.score, landmarks=landmarks, detector=detection.detector
            )

    return WithFaceMesh(Study(face_detector=registry.load(DEFAULT_FACE_DETECTOR))).load()


def evaluate_sets(model: Any, data_root: Path) -> dict[str, dict[str, Any]]:
    """Mean/median NME (five digits), misses and compute ms per photo on val, London and landmarks68."""
    from ml.landmarks.evaluation import evaluate_faces
    from ml.landmarks.human_sets import read_human_set

    sets = {
        "landmarks300w val": read_human_set(data_root / "landmarks300w", "val"),
        "london": read_human_set(data_root / "london"),
        "landmarks68": read_human_set(data_root / "landmarks68"),
    }
    figures = {}
    for name, faces in sets.items():
        rows = evaluate_faces(model, faces)
        measured = [row.nme for row in rows if row.nme is not None]
        figures[name] = {
            "faces": len(rows),
            "misses": sum(not row.detected for row in rows),
            "mean_nme": round(float(np.mean(measured)), 5),
            "median_nme": round(float(np.median(measured)), 5),
            "compute_ms_median": round(float(np.median([row.cpu_milliseconds for row in rows])), 1),
            "per_face": {row.name: row.nme for row in rows} if name == "landmarks68" else None,
        }
    return figures


def _labelled(data_root: Path) -> dict[str, tuple[np.ndarray, np.ndarray, Any]]:
    """name → (image, human points, YuNet detection of the labelled face) for the landmarks68 faces."""
    from ml.core.imageio import load_image
    from ml.core.metrics import box_iou
    from ml.landmarks.human_sets import read_human_set
    from ml.registry import registry

    yunet = registry.load("yunet")
    faces = {}
    for face in read_human_set(data_root / "landmarks68"):
        image = load_image(face.image)
        extent = (*face.points.min(axis=0), *face.points.max(axis=0))
        detection = max(yunet.detect(image), key=lambda item: box_iou(item.box, extent))
        faces[face.name] = (image, face.points, detection)
    return faces


def _roll_degrees(five_points: np.ndarray) -> float:
    left, right = five_points[0], five_points[1]
    return float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))


def _human_five_points(points: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip and mouth corners of 68 labelled points (the five points' frame)."""
    return np.stack(
        [points[36:42].mean(axis=0), points[42:48].mean(axis=0), points[30], points[48], points[54]]
    )


def _part_errors(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    distance = float(np.linalg.norm(truth[36] - truth[45]))
    errors = np.linalg.norm(predicted - truth, axis=1) / distance
    return {part: round(float(errors[list(points)].mean()), 3) for part, points in FACE_PARTS.items()}


def _fit_levelled(model: Any, image: np.ndarray, detection: Any, degrees: float) -> np.ndarray:
    """The default fit on the photo rotated by ``degrees`` about the face frame, mapped back."""
    import cv2

    from ml.core.detection import FaceDetection
    from ml.core.landmarks import detection_frame

    if degrees == 0.0:
        return model.fit(image, detection).landmarks
    centre, _ = detection_frame(detection)
    rotation = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), degrees, 1.0)
    rotated = cv2.warpAffine(image, rotation, (image.shape[1], image.shape[0]), flags=cv2.INTER_CUBIC)
    points = np.asarray(detection.points) @ rotation[:, :2].T + rotation[:, 2]
    levelled = FaceDetection(
        box=detection.box, score=detection.score, detector=detection.detector, points=points
    )
    back = cv2.invertAffineTransform(rotation)
    return model.fit(rotated, levelled).landmarks @ back[:, :2].T + back[:, 2]


def _resampled_nmes(model: Any, image: np.ndarray, truth: np.ndarray, detection: Any) -> list[float]:
    """The default path's NME on 14 resamplings of the photo (scale 0.97–1.03, 0 or ½-pixel shift), each
    started from YuNet's frame mapped through the same resampling."""
    import cv2

    from ml.core.detection import FaceDetection
    from ml.landmarks.evaluation import partial_nme

    nmes = []
    for factor, shift in itertools.product((0.97, 0.98, 0.99, 1.0, 1.01, 1.02, 1.03), (0.0, 0.5)):
        warp = np.float32([[factor, 0, shift], [0, factor, shift]])
        size = (int(image.shape[1] * factor) + 1, int(image.shape[0] * factor) + 1)
        resampled = cv2.warpAffine(image, warp, size, flags=cv2.INTER_CUBIC)
        moved = FaceDetection(
            box=tuple(float(value) * factor + shift for value in detection.box),
            score=detection.score,
            detector=detection.detector,
            points=np.asarray(detection.points) * factor + shift,
        )
        landmarks = (model.fit(resampled, moved).landmarks - shift) / factor
        nmes.append(round(partial_nme(landmarks, truth), 4))
    return nmes


def diagnosis(data_root: Path) -> dict[str, Any]:
    """Per-part errors, YuNet frame vs the human frame, the human-frame oracle and resampling spread."""
    from ml.core.detection import FaceDetection
    from ml.core.landmarks import detection_frame
    from ml.landmarks.evaluation import partial_nme
    from ml.registry import registry

    model = registry.load("dlib-68")
    rows = {}
    for name, (image, truth, detection) in _labelled(data_root).items():
        human_points = _human_five_points(truth)
        human = FaceDetection(box=detection.box, score=1.0, detector=detection.detector, points=human_points)
        yunet_centre, yunet_scale = detection_frame(detection)
        human_centre, human_scale = detection_frame(human)
        human_roll = _roll_degrees(human_points)
        default = model.fit(image, detection).landmarks
        resampled = _resampled_nmes(model, image, truth, detection)
        rows[name] = {
            "default_nme": round(partial_nme(default, truth), 4),
            "part_nme": _part_errors(default, truth),
            "yunet_scale_over_human": round(yunet_scale / human_scale, 3),
            "yunet_roll_deg": round(_roll_degrees(np.asarray(detection.points)), 1),
            "human_roll_deg": round(human_roll, 1),
            "yunet_centre_offset_in_human_scale": [
                round(float(value), 3) for value in (yunet_centre - human_centre) / human_scale
            ],
            "oracle_nme": {
                "YuNet frame, levelled by the human eye line": round(
                    partial_nme(_fit_levelled(model, image, detection, human_roll), truth), 4
                ),
                "human frame": round(partial_nme(_fit_levelled(model, image, human, 0.0), truth), 4),
                "human frame, levelled": round(
                    partial_nme(_fit_levelled(model, image, human, human_roll), truth), 4
                ),
            },
            "resampled_nme": {
                "min": min(resampled),
                "median": round(float(np.median(resampled)), 4),
                "max": max(resampled),
                "all": resampled,
            },
        }
    return rows


def adopted(row: dict[str, Any], shipped: dict[str, Any], job_ms: float) -> bool:
    """The adoption rule (module docstring), on one candidate's figures against the shipped path's."""
    figures, faces = row["figures"], row["figures"]["landmarks68"]["per_face"]
    return (
        figures["landmarks300w val"]["mean_nme"] <= shipped["landmarks300w val"]["mean_nme"] + VAL_TOLERANCE
        and figures["london"]["mean_nme"] <= shipped["london"]["mean_nme"]
        and all(faces[name] is not None and faces[name] <= ACCEPTANCE_NME for name in LANDMARKS68)
        and job_ms <= JOB_BUDGET_MS
    )


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# dlib-68 on landmarks68/einstein: diagnosis and general fixes tried",
        "",
        f"Command: `{report['command']}` ({report['date']}, load average {report['load_average']} at the "
        "start; 2 shared cores, one thread).",
        "",
        "Issue 11's acceptance test wants NME ≤ 0.06 on each landmarks68 face on the default path (YuNet → "
        "calibrated HOG-style box → dlib's 68-point predictor, median over the shipped 2×2 box jitter); "
        "einstein measures 0.0716 and its test is an expected failure. dlib-68's landmarks300w figures are "
        "in-sample (dlib trained on those images); London and landmarks68 are out of sample.",
        "",
        "## Diagnosis",
        "",
        "| face | default NME | jaw | brows | nose | eyes | mouth | YuNet scale / human | roll YuNet / human "
        "| YuNet centre − human (scale units) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in report["diagnosis"].items():
        parts = row["part_nme"]
        offset = row["yunet_centre_offset_in_human_scale"]
        lines.append(
            f"| {name} | {row['default_nme']} | {parts['jaw']} | {parts['brows']} | {parts['nose']} | "
            f"{parts['eyes']} | {parts['mouth']} | {row['yunet_scale_over_human']} | "
            f"{row['yunet_roll_deg']}° / {row['human_roll_deg']}° | {offset[0]:+.3f}, {offset[1]:+.3f} |"
        )
    oracle_names = list(next(iter(report["diagnosis"].values()))["oracle_nme"])
    lines += [
        "",
        "Started from the human labels' frame instead of YuNet's (an oracle, not a method), and the spread "
        "of the default path over 14 imperceptible resamplings of the same photo (scale 0.97–1.03, 0 or "
        "½-pixel shift, YuNet's frame moved with it):",
        "",
        "| face | default | " + " | ".join(oracle_names) + " | resampled: min | median | max |",
        "|---|---|" + "---|" * (len(oracle_names) + 3),
    ]
    for name, row in report["diagnosis"].items():
        spread = row["resampled_nme"]
        lines.append(
            f"| {name} | {row['default_nme']} | "
            + " | ".join(str(row["oracle_nme"][key]) for key in oracle_names)
            + f" | {spread['min']} | {spread['median']} | {spread['max']} |"
        )
    lines += [
        "",
        report["diagnosis_reading"],
        "",
        "## Candidates",
        "",
        "Adoption rule, fixed with the candidate set before measuring: landmarks300w val mean NME worse by "
        f"at most {VAL_TOLERANCE}, London mean NME not worse, breakingbad, lenna and takeo ≤ "
        f"{ACCEPTANCE_NME}, einstein ≤ {ACCEPTANCE_NME}, landmark + pose + quality job ≤ {JOB_BUDGET_MS:.0f} "
        "ms per 12-MP photo; among those, the lowest val mean. landmarks300w test was not used.",
        "",
        "Box sets in (side factor, dx, dy) around the calibrated box, dx/dy in eye-to-mouth units; contrast "
        "normalisation of the grey image the predictor reads. Compute ms: median process CPU time of "
        "`detect` per photo on landmarks300w val (YuNet, landmarks, FaceMesh surface), one thread, under the "
        "load above — compare rows with each other, not with the benchmark.",
        "",
        "| boxes | contrast | val mean NME | val median | London mean | breakingbad | einstein | lenna "
        "| takeo | compute ms | job estimate ms | adopted |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["candidates"]:
        figures = row["figures"]
        faces = figures["landmarks68"]["per_face"]
        lines.append(
            f"| {row['boxes']} | {row['contrast']} | {figures['landmarks300w val']['mean_nme']} | "
            f"{figures['landmarks300w val']['median_nme']} | {figures['london']['mean_nme']} | "
            + " | ".join(str(faces[name]) for name in LANDMARKS68)
            + f" | {figures['landmarks300w val']['compute_ms_median']} | {row['job_ms_estimate']} | "
            f"{row['adopted']} |"
        )
    lines += ["", report["reading"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/reports"))
    args = parser.parse_args(argv)
    from bench.report import write_report
    from ml.config import apply_torch_threads, data_dir_or_none

    apply_torch_threads()
    root = data_dir_or_none()
    if root is None:
        parser.error("the research data directory is absent (set FACET_DATA_DIR)")
    report: dict[str, Any] = {
        "command": "python scripts/dlib_einstein_study.py "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": round(os.getloadavg()[0], 2),
    }
    started = time.perf_counter()
    report["diagnosis"] = diagnosis(root)
    candidates = []
    for (boxes_name, boxes), contrast in itertools.product(jitter_sets().items(), CONTRASTS):
        # contrast is crossed with the shipped set and the full factorial only; the others run without it
        if contrast != "none" and boxes_name not in ("shipped 2×2 (4)", "centre + 2^3, ±5 % / ±0.05 (9)"):
            continue
        figures = evaluate_sets(study_landmarker(boxes, contrast), root)
        candidates.append({"boxes": boxes_name, "contrast": contrast, "set": boxes, "figures": figures})
        print(boxes_name, contrast, json.dumps({k: v["mean_nme"] for k, v in figures.items()}), flush=True)
    shipped = candidates[0]["figures"]
    # The job budget is set by the 12-MP benchmark (bench/reports/landmark_detectors.md: 20.9 ms median on
    # the shipped path); a candidate adds its extra predictions' time measured here on val.
    shipped_ms = shipped["landmarks300w val"]["compute_ms_median"]
    for row in candidates:
        extra_ms = row["figures"]["landmarks300w val"]["compute_ms_median"] - shipped_ms
        row["job_ms_estimate"] = round(SHIPPED_JOB_MS + extra_ms, 1)
        verdict = "yes" if adopted(row, shipped, row["job_ms_estimate"]) else "no"
        row["adopted"] = "shipped" if row is candidates[0] else verdict
    report["candidates"] = candidates
    report["seconds"] = round(time.perf_counter() - started)
    report["diagnosis_reading"] = DIAGNOSIS_READING
    report["reading"] = READING
    write_report(args.out, "landmarks-einstein", report, markdown(report))
    print(markdown(report))
    return 0


# The shipped path's landmark job per 12-MP photo, compute median (bench/reports/landmark_detectors.md).
SHIPPED_JOB_MS = 20.9
DIAGNOSIS_READING = (
    "einstein's error sits in the jaw (0.108, along the cheek line where hair and ear meet) "
    "and the brows (0.087: bushy grey brows on grey skin); nose, eyes and mouth are near or within 0.06. "
    "About half of the excess is the frame: YuNet's five points on this face are off (eye-to-mouth 17 % "
    "too long, the eye line level where the head is rolled 21°), and started from the human labels' frame "
    "the predictor measures 0.0618 instead of 0.0716. The rest is the image: from the human frame it is "
    "still above the bar, levelling the face does not help (dlib copes with this roll; on the turned "
    "breakingbad face levelling is much worse), and imperceptible resamplings of the photo move the "
    "default path between 0.0665 and 0.0811 — above the bar on every resampling, while the other three "
    "stay at or below 0.054."
)
READING = (
    "No candidate meets the rule, so the default path is unchanged and einstein's test stays an expected "
    "failure. Box sets: the per-point median of boxes whose predictions disagree lands between them, not "
    "on the face — einstein moves between 0.073 and 0.092 and breakingbad up to 0.086 with the wider set; "
    "the 9-box factorial is marginally better on val and London but not on the acceptance faces. Contrast: "
    "CLAHE and histogram equalisation worsen val by 0.003–0.006 (the regression trees' split thresholds "
    "are learnt on raw intensity differences); the percentile stretch helps einstein (0.0678 with the "
    "shipped boxes, 0.0608 with the 9-box factorial) but misses the bar, worsens val by 0.0008 with the "
    "shipped boxes, and with nine boxes its job estimate is at the 30 ms budget. The candidate set and "
    "the rule were fixed before measuring and nothing was tuned further on einstein. Job estimate: the "
    "shipped job's 20.9 ms per 12-MP photo (bench/reports/landmark_detectors.md) plus the candidate's "
    "extra compute per val photo in this run, which the shared machine's load inflates."
)


if __name__ == "__main__":
    raise SystemExit(main())
