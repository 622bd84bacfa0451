"""Two alignment paddings compared on the same faces, from two ``framing`` reports (report §20).

``python scripts/normality_padding_replication.py BASELINE.json CANDIDATE.json [--out FILE]`` reads two
reports of ``python -m ml normality framing … --out`` made on the same photos with the same options (only
the code of the padding differs) and prints, for the raw residual map:

* the noise floor of each (95th percentile of |ΔS| over the re-framed photos);
* crop vs original, on the pairs scored by both: the median |ΔS| of each, the Wilcoxon signed-rank test
  (scipy, one-sided) that the candidate's per-pair |ΔS| is smaller, and the ICC(A,1) of S(crop) vs
  S(original) of each;
* each padding's share of pairs within its own floor, for the record.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import wilcoxon

MAP = "raw"


def _pair_differences(report: dict[str, Any]) -> dict[str, float]:
    return {pair["image"]: abs(pair["crop"][MAP] - pair["original"][MAP]) for pair in report["crop_pairs"]}


def compare(baseline: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """The replication figures of ``candidate`` against ``baseline`` (two framing reports)."""
    if baseline["data"] != candidate["data"] or baseline["crop_pairs_data"] != candidate["crop_pairs_data"]:
        raise SystemExit("The two reports were not made on the same photos.")
    first, second = _pair_differences(baseline), _pair_differences(candidate)
    shared = sorted(set(first) & set(second))
    before = np.array([first[name] for name in shared])
    after = np.array([second[name] for name in shared])
    test = wilcoxon(after, before, alternative="less")

    def figures(report: dict[str, Any], differences: np.ndarray) -> dict[str, Any]:
        raw = report["residual_maps"][MAP]
        floor = raw["noise_floor_95"]
        return {
            "noise_floor_95": floor,
            "tight_crop_median_abs_difference": raw["median_abs_difference"]["tight_crop"],
            "crop_vs_original_median_abs_difference": float(np.median(differences)),
            "crop_vs_original_within_own_floor": float(np.mean(differences <= floor)),
            "crop_vs_original_icc_a1": raw["mebeauty_crop_vs_original"]["icc_a1"],
            "pairs_scored": raw["mebeauty_crop_vs_original"]["count"],
        }

    return {
        "photos": baseline["data"],
        "pairs": baseline["crop_pairs_data"],
        "pairs_scored_by_both": len(shared),
        "baseline": figures(baseline, before),
        "candidate": figures(candidate, after),
        "wilcoxon_candidate_smaller": {
            "statistic": float(test.statistic),
            "p_one_sided": float(test.pvalue),
            "pairs_smaller": int(np.sum(after < before)),
            "pairs_larger": int(np.sum(after > before)),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = compare(json.loads(args.baseline.read_text()), json.loads(args.candidate.read_text()))
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
