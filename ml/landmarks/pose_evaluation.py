"""Head-pose accuracy on FASSEG multipose: yaw known from the file name, per angle.

``python -m ml landmarks evaluate-pose --data DIR/fasseg/multipose --json [--model NAME]``.
FASSEG's multipose faces (Pointing'04 heads: 7 people, 2 sessions, yaw −90°…+90° in 15° steps) carry the
yaw as a file-name prefix in the opposite sign convention to Facet's (``+45__…``: the nose points to image
left, i.e. the subject turned to their right, Facet yaw −45°).

Two errors are reported per angle: the **absolute** error against the file-name yaw, and the error
**relative to the same session's 0° photo** (estimate at θ minus estimate at 0°, against θ). The file-name
yaw is the direction of a marker the subject looked at; at the 0° marker some subjects' heads are visibly
turned by up to about 10°, a per-session offset that no estimator can remove and that the relative error
cancels.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

FILE_PATTERN = re.compile(r"^(?P<yaw>[+-]?\d+)__personne(?P<person>\d\d)(?P<session>\d)")
GOAL_MAX_ABS_YAW = 45.0
GOAL_MEAN_ERROR = 5.0


@dataclass
class PoseResult:
    name: str
    session: str
    yaw_truth: float
    detected: bool
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    source: str | None = None
    milliseconds: float | None = None


def multipose_photos(folder: Path) -> list[tuple[Path, float, str]]:
    """``(path, Facet yaw, session)`` of every FASSEG multipose photo in ``folder`` (or its ``images/``)."""
    folder = Path(folder)
    for candidate in (folder, folder / "images", folder / "train" / "images"):
        photos = sorted(candidate.glob("*.jpg"))
        if photos:
            break
    found = []
    for path in photos:
        match = FILE_PATTERN.match(path.name)
        if match:
            found.append((path, -float(match.group("yaw")), match.group("person") + match.group("session")))
    if not found:
        raise FileNotFoundError(f"No FASSEG multipose photos (<yaw>__personneNNS….jpg) under {folder}.")
    return found


def evaluate_pose(
    model_name: str,
    folder: Path,
    detector_name: str | None = None,
    max_abs_yaw: float = 90.0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Yaw, pitch and roll of the best-scoring face in every multipose photo, with per-angle errors."""
    import time

    from ml.core.imageio import load_image
    from ml.landmarks.mesh import head_pose
    from ml.registry import registry

    model = registry.load(model_name)
    face_detector = registry.load(detector_name) if detector_name else None
    photos = [photo for photo in multipose_photos(folder) if abs(photo[1]) <= max_abs_yaw]
    results = []
    for index, (path, yaw, session) in enumerate(photos):
        image = load_image(path)
        started = time.perf_counter()
        faces = model.detect(image, face_detector=face_detector)
        row = PoseResult(name=path.name, session=session, yaw_truth=yaw, detected=bool(faces))
        if faces:
            pose, source = head_pose(faces[0], image.shape)
            row.yaw, row.pitch, row.roll = round(pose.yaw, 2), round(pose.pitch, 2), round(pose.roll, 2)
            row.source = source
        row.milliseconds = round((time.perf_counter() - started) * 1000.0, 2)
        results.append(row)
        if progress is not None:
            progress(index + 1, len(photos))
    used = face_detector or getattr(model, "face_detector", None)  # a whole-photo model boxes faces itself
    used_detector = used.name if used is not None else f"{model_name} (own boxes)"
    return {
        "model": model_name,
        "version": registry.spec(model_name).version,
        "detector": used_detector,
        "data": str(folder),
        "yaw_convention": "Facet: yaw > 0 when the subject turned to their left (file-name sign reversed)",
        **pose_summary(results),
        "photos": [asdict(row) for row in results],
    }


def pose_summary(results: list[PoseResult]) -> dict[str, Any]:
    """Per-angle table and the goal figures (mean |yaw error| over |yaw| ≤ 45°)."""
    frontal = {row.session: row.yaw for row in results if row.yaw_truth == 0 and row.yaw is not None}
    per_angle = []
    absolute_in_goal, relative_in_goal = [], []
    for angle in sorted({row.yaw_truth for row in results}):
        rows = [row for row in results if row.yaw_truth == angle]
        measured = [row for row in rows if row.yaw is not None]
        errors = np.asarray([row.yaw - angle for row in measured], dtype=np.float64)
        relative = np.asarray(
            [row.yaw - frontal[row.session] - angle for row in measured if row.session in frontal],
            dtype=np.float64,
        )
        if abs(angle) <= GOAL_MAX_ABS_YAW:
            absolute_in_goal += list(np.abs(errors))
            if angle != 0:
                relative_in_goal += list(np.abs(relative))
        per_angle.append(
            {
                "yaw": angle,
                "photos": len(rows),
                "detected": len(measured),
                "mean_estimate": round(float(np.mean([row.yaw for row in measured])), 2)
                if measured
                else None,
                "mean_abs_error": round(float(np.abs(errors).mean()), 2) if errors.size else None,
                "mean_error": round(float(errors.mean()), 2) if errors.size else None,
                "mean_abs_error_relative_to_own_0": round(float(np.abs(relative).mean()), 2)
                if relative.size
                else None,
            }
        )
    absolute = float(np.mean(absolute_in_goal)) if absolute_in_goal else float("nan")
    relative_mean = float(np.mean(relative_in_goal)) if relative_in_goal else float("nan")
    return {
        "goal": f"mean |yaw error| ≤ {GOAL_MEAN_ERROR}° for |yaw| ≤ {GOAL_MAX_ABS_YAW}°",
        "mean_abs_yaw_error_le_45": round(absolute, 2) if np.isfinite(absolute) else None,
        "mean_abs_yaw_error_le_45_relative_to_own_0": round(relative_mean, 2)
        if np.isfinite(relative_mean)
        else None,
        "goal_met": bool(np.isfinite(absolute) and absolute <= GOAL_MEAN_ERROR),
        "per_angle": per_angle,
    }
