"""Key figures of the every-face wrinkle box evaluations of 0.3.0 and 0.4.0, side by side with the
subject-face figures of the same pass: ``docs/reports/wrinkles-boxes-all-faces.json``.

Reads the two reports written by ``python -m ml wrinkles evaluate-boxes --faces all --out ...``
(their commands are carried over); computes nothing new.

Usage: ``python scripts/wrinkles_all_faces_summary.py``
"""

from __future__ import annotations

import json
from pathlib import Path

REPORTS = Path(__file__).resolve().parent.parent / "docs" / "reports"
VERSIONS = ("0.3.0", "0.4.0")
KEYS = (
    "box_recall",
    "box_recall_on_analysed_faces",
    "pixel_precision",
    "faces_analysed",
    "boxes_on_analysed_face",
    "boxes_on_no_analysed_face",
    "boxes_on_no_analysed_face_by_reason",
    "boxes_on_photos_not_analysed",
    "predicted_pixels",
)


def summary_rows(version: str, data: dict) -> list[dict]:
    """One row per split and protocol (``subject``: the product's rule; ``all``: every detected face)."""
    rows = []
    for report in data["reports"]:
        for faces, part in (("subject", report), ("all", report["all_faces"])):
            rows.append(
                {
                    "model": f"wrinkles-unet-wds {version}",
                    "split": report["split"],
                    "faces": faces,
                    "photos": report["photos"],
                    "share_analysed": report["share_analysed"],
                    "boxes": report["boxes"],
                    **{key: part[key] for key in KEYS},
                    "per_class": [
                        {**row, **faces_row}
                        for row, faces_row in zip(part["per_class"], part["per_class_faces"], strict=True)
                    ],
                    "layout": {
                        key: value for key, value in report["layout"].items() if key != "faces_not_analysed"
                    },
                }
            )
    return rows


def main() -> None:
    rows, commands = [], {}
    for version in VERSIONS:
        data = json.loads((REPORTS / f"wrinkles-boxes-all-faces-{version}.json").read_text())
        commands[version] = data["command"]
        rows += summary_rows(version, data)
    summary = {
        "label": "real photographs with human wrinkle boxes",
        "commands": commands,
        "command": "python scripts/wrinkles_all_faces_summary.py",
        "threshold_and_post_processing": "unchanged: those of each model, chosen on val under the "
        "subject-face protocol (0.4.0's post-processing; 0.3.0 has none)",
        "rows": rows,
    }
    (REPORTS / "wrinkles-boxes-all-faces.json").write_text(json.dumps(summary, indent=2) + "\n")
    for row in rows:
        print(
            f"{row['model']} {row['split']} {row['faces']}: faces {row['faces_analysed']}, boxes on a face "
            f"{row['boxes_on_analysed_face']} / on none {row['boxes_on_no_analysed_face']}, recall "
            f"{row['box_recall']:.3f} (on analysed faces {row['box_recall_on_analysed_faces']:.3f}), "
            f"precision {row['pixel_precision']:.3f}"
        )


if __name__ == "__main__":
    main()
