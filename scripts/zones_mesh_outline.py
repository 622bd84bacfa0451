"""Does the FaceMesh surface make a better face outline for the landmark zone map than the 68 points?

``python scripts/zones_mesh_outline.py [--out docs/reports]`` renders FASSEG's face parts with the
landmark zone model (``ml.zones.landmark_model.render_face_parts``) three ways and measures them against
the human FASSEG masks (IoU over the set, as ``ml.zones.evaluate`` does):

* ``68 points``: the zone model as shipped — jaw contour, temples extrapolated from it and a forehead
  dome 0.8 inter-ocular distances above the brows;
* ``mesh oval``: the skin outline replaced by FaceMesh's face oval (36 silhouette vertices, forehead to
  chin), which is where the forehead, temple and cheek zones are clipped;
* ``mesh above the eyes``: the 68-point outline below the eye line, the mesh oval above it (forehead and
  temples only).

Eyes, nose and mouth come from the 68 points in all three, so only ``skin`` can change. The landmarks and
the mesh are dlib-68's with its FaceMesh surface on the default detector.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ml.model_names import DLIB_68

# MediaPipe's face-oval silhouette, clockwise from the top of the forehead (vertex 10).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152)
FACE_OVAL += (148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from PIL import Image

    from ml.config import data_dir
    from ml.core.imageio import load_image
    from ml.registry import registry
    from ml.zones.evaluate import EVALUATED_PARTS, IouAccumulator, fasseg_pairs, parts_stack
    from ml.zones.geometry import FaceGeometry, Polygon
    from ml.zones.landmark_model import FACE_PARTS, rasterize_shape, render_face_parts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/reports"))
    args = parser.parse_args(argv)
    model = registry.load(DLIB_68)
    variants = ("68 points", "mesh oval", "mesh above the eyes")
    accumulators = {name: IouAccumulator(EVALUATED_PARTS) for name in variants}
    skin = FACE_PARTS.index("skin")
    for image_path, mask_path in fasseg_pairs(data_dir() / "fasseg" / "frontal" / "train"):
        image = load_image(image_path)
        truth = np.asarray(Image.open(mask_path))
        face = model.detect(image)[0]
        height, width = image.shape[:2]
        base = render_face_parts(face.landmarks, image.shape)
        oval = rasterize_shape(Polygon(face.mesh[list(FACE_OVAL), :2]), height, width)
        outline68 = rasterize_shape(FaceGeometry(face.landmarks).face_outline(), height, width)
        above_eyes = np.arange(height)[:, None] < face.landmarks[36:48, 1].mean()
        for name, outline in (
            ("68 points", outline68),
            ("mesh oval", oval),
            ("mesh above the eyes", np.where(above_eyes, oval, outline68)),
        ):
            labels = base.copy()
            labels[(labels == skin) & ~outline] = FACE_PARTS.index("background")
            # newly covered area becomes skin; inside the 68-point outline the brows stay background
            labels[outline & ~outline68 & (labels == FACE_PARTS.index("background"))] = skin
            accumulators[name].add(parts_stack(labels), parts_stack(truth))
    tables = {name: accumulator.table() for name, accumulator in accumulators.items()}
    command = "python scripts/zones_mesh_outline.py"
    lines = [
        "# FaceMesh outline for the landmark zone map: FASSEG face-part IoU",
        "",
        f"Command: `{command}` (20 FASSEG frontal faces; dlib-68 landmarks and FaceMesh surface, YuNet).",
        "",
        "| outline | skin | eyes | nose | mouth | mean |",
        "|---|---|---|---|---|---|",
    ]
    for name, table in tables.items():
        iou = table["iou"]
        lines.append(
            f"| {name} | {iou['skin']:.4f} | {iou['eyes']:.4f} | {iou['nose']:.4f} | {iou['mouth']:.4f} | "
            f"{table['mean_iou']:.4f} |"
        )
    best = max(tables, key=lambda name: tables[name]["iou"]["skin"])
    if best == "68 points":
        verdict = (
            "The 68-point outline matches FASSEG's skin best: FaceMesh's oval stops below the hairline (its "
            "top vertex lies on the upper forehead) while FASSEG's skin and the zone map's forehead dome "
            "reach the hairline. The zone map keeps its 68-point outline."
        )
    else:
        verdict = f"The '{best}' outline matches FASSEG's skin best."
    lines += ["", verdict, ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "zones-mesh-outline.json").write_text(
        json.dumps({"command": command, **tables}, indent=1) + "\n"
    )
    (args.out / "zones-mesh-outline.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
