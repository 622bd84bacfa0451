"""Which FaceMesh depth gain makes the mesh yaw agree with the human labels? (landmarks300w train only)

``python scripts/pose_depth_gain.py [--out docs/reports] [--write]`` measures, on the faces of the fixed
landmarks300w **train** split (never on FASSEG, which validates the result), how the yaw of the rigid mesh
fit (:func:`ml.landmarks.mesh.pose_from_mesh`) agrees with the yaw of the human 68 labels
(:func:`ml.core.pose.estimate_head_pose` with the shipped 3-D face model) for every depth gain from 1.0 to
2.5:

* ``ols_slope``: slope of mesh yaw regressed on human yaw — the rule that chose the shipped gain (slope 1).
  Both yaws are noisy, and noise in the regressor flattens an ordinary least-squares slope (regression
  dilution), so slope 1 by this rule asks for a mesh that *over*-reads turns;
* ``orthogonal_slope``: the errors-in-variables (Deming, equal error variances) slope, which that noise does
  not bias;
* ``mean_abs_difference``: mean |mesh yaw − human yaw|, the agreement itself.

The chosen gain is the one whose orthogonal slope is closest to 1. With ``--write`` it replaces the depth
gain in ``ml/weights/mediapipe/mesh_geometry.json`` (the reference surface is unchanged) and records the
rule; the study is written to ``<out>/pose-depth-gain.{json,md}``. The meshes of the training faces are
cached in ``var/pose-depth-gain-train.npz`` (FaceMesh on 905 faces takes minutes on this CPU).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CACHE = Path("var/pose-depth-gain-train.npz")
GAINS = np.round(np.arange(1.0, 2.51, 0.05), 2)
MAX_ABS_YAW = 50.0


def orthogonal_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Deming regression slope of ``y`` on ``x`` with equal error variances (total least squares)."""
    sxx, syy = float(np.var(x)), float(np.var(y))
    sxy = float(np.mean((x - x.mean()) * (y - y.mean())))
    return (syy - sxx + np.sqrt((syy - sxx) ** 2 + 4.0 * sxy**2)) / (2.0 * sxy)


def training_faces(data_root: Path) -> tuple[np.ndarray, np.ndarray]:
    """FaceMesh surfaces of the train faces and the human-label yaw of each (cached)."""
    from ml.core.pose import estimate_head_pose
    from ml.landmarks.mesh import training_meshes

    if CACHE.is_file():
        cached = np.load(CACHE)
        return cached["meshes"], cached["human_yaw"]
    meshes, truths, shapes = training_meshes(data_root)
    human_yaw = np.array([estimate_head_pose(t, s).yaw for t, s in zip(truths, shapes, strict=True)])
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(CACHE, meshes=np.asarray(meshes), human_yaw=human_yaw)
    return np.asarray(meshes), human_yaw


def study(meshes: np.ndarray, human_yaw: np.ndarray) -> dict:
    from ml.landmarks.mesh import MeshGeometry, mesh_geometry, pose_from_mesh

    shipped = mesh_geometry()
    usable = np.abs(human_yaw) <= MAX_ABS_YAW
    rows = []
    for gain in GAINS:
        geometry = MeshGeometry(shipped.reference, float(gain), shipped.mirror)
        mesh_yaw = np.array([pose_from_mesh(mesh, geometry).yaw for mesh in meshes[usable]])
        truth = human_yaw[usable]
        rows.append(
            {
                "gain": float(gain),
                "ols_slope": round(float(np.polyfit(truth, mesh_yaw, 1)[0]), 4),
                "orthogonal_slope": round(orthogonal_slope(truth, mesh_yaw), 4),
                "mean_abs_difference": round(float(np.abs(mesh_yaw - truth).mean()), 3),
            }
        )
    chosen = min(rows, key=lambda row: abs(row["orthogonal_slope"] - 1.0))
    return {
        "faces": int(usable.sum()),
        "shipped_gain": shipped.depth_gain,
        "rule": "orthogonal (Deming) slope of mesh yaw on human-label yaw closest to 1, |yaw| ≤ 50°",
        "chosen_gain": chosen["gain"],
        "gains": rows,
    }


def markdown(document: dict) -> str:
    lines = [
        "# FaceMesh depth gain from the human 300-W labels (train split)",
        "",
        "Command:",
        "",
        "```",
        document["command"],
        "```",
        "",
        f"{document['faces']} landmarks300w train faces with human-label |yaw| ≤ {MAX_ABS_YAW:.0f}°. "
        "Human-label yaw: the 68-point PnP estimate of the human points. FASSEG was not used.",
        "",
        f"Rule: {document['rule']}. Shipped before: {document['shipped_gain']}; "
        f"chosen: **{document['chosen_gain']}**.",
        "",
        "| gain | OLS slope | orthogonal slope | mean abs difference (°) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {row['gain']:.2f} | {row['ols_slope']} | {row['orthogonal_slope']} | "
        f"{row['mean_abs_difference']} |"
        for row in document["gains"]
    ]
    return "\n".join(lines) + "\n"


def write_gain(gain: float, document: dict) -> None:
    from ml.landmarks.mesh import GEOMETRY_FILE, mediapipe_weights_dir

    path = mediapipe_weights_dir() / GEOMETRY_FILE
    geometry = json.loads(path.read_text())
    geometry["depth_gain"] = gain
    geometry["source"] = geometry["source"].split("; depth gain")[0] + (
        f"; depth gain {gain}: {document['rule']} ({document['faces']} faces; scripts/pose_depth_gain.py)"
    )
    geometry["depth_gain_study"] = {key: value for key, value in document.items() if key != "gains"}
    path.write_text(json.dumps(geometry) + "\n")


def main(argv: list[str] | None = None) -> int:
    from ml.config import data_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/reports", help="Folder of the Markdown and JSON reports.")
    parser.add_argument("--write", action="store_true", help="Ship the chosen gain in mesh_geometry.json.")
    args = parser.parse_args(argv)
    meshes, human_yaw = training_faces(data_dir())
    document = {"command": "python scripts/pose_depth_gain.py " + shlex.join(sys.argv[1:])}
    document.update(study(meshes, human_yaw))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pose-depth-gain.json").write_text(json.dumps(document, indent=1) + "\n")
    (out / "pose-depth-gain.md").write_text(markdown(document))
    print(markdown(document))
    if args.write:
        write_gain(document["chosen_gain"], document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
