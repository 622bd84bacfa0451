"""Two analyses compared on the same faces, from two ``framing`` reports: the alignment paddings of
report §20, digital fill and the mirror-averaged normal face of §22.

``python scripts/normality_padding_replication.py BASELINE.json CANDIDATE.json [--out FILE]`` reads two
reports of ``python -m ml normality framing … --out`` made on the same photos with the same options (only
the analysis differs) and prints, for the raw residual map:

* the noise floor of each (95th percentile of |ΔS| over the re-framed photos);
* crop vs original, on the pairs scored by both: the median |ΔS| of each, the Wilcoxon signed-rank test
  (scipy, one-sided) that the candidate's per-pair |ΔS| is smaller, and the ICC(A,1) of S(crop) vs
  S(original) of each;
* each one's share of pairs within its own floor, for the record.

A decision run on crop pairs alone (``framing --limit 0``) has no floor of its own: ``--floors-from``
names two reports (baseline, candidate) whose floors are used, and ``--exclude-pairs-of`` a report whose
crop pairs (tuning data) are left out of the comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import wilcoxon

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MAP = "raw"


def _pair_differences(report: dict[str, Any]) -> dict[str, float]:
    return {pair["image"]: abs(pair["crop"][MAP] - pair["original"][MAP]) for pair in report["crop_pairs"]}


def compare(
    baseline: dict[str, Any],
    candidate: dict[str, Any],
    floors: tuple[float, float] | None = None,
    excluded: set[str] = frozenset(),
) -> dict[str, Any]:
    """The replication figures of ``candidate`` against ``baseline`` (two framing reports), each pair's
    share within ``floors`` (baseline's, candidate's; default each report's own), without the crop pairs
    named in ``excluded``."""
    if baseline["data"] != candidate["data"] or baseline["crop_pairs_data"] != candidate["crop_pairs_data"]:
        raise SystemExit("The two reports were not made on the same photos.")
    first, second = _pair_differences(baseline), _pair_differences(candidate)
    shared = sorted((set(first) & set(second)) - excluded)
    before = np.array([first[name] for name in shared])
    after = np.array([second[name] for name in shared])
    test = wilcoxon(after, before, alternative="less")

    def figures(report: dict[str, Any], differences: np.ndarray, floor: float | None) -> dict[str, Any]:
        raw = report["residual_maps"][MAP]
        floor = raw["noise_floor_95"] if floor is None else floor
        return {
            "noise_floor_95": floor,
            "tight_crop_median_abs_difference": raw["median_abs_difference"].get("tight_crop"),
            "crop_vs_original_median_abs_difference": float(np.median(differences)),
            "crop_vs_original_within_own_floor": float(np.mean(differences <= floor)),
            "crop_vs_original_icc_a1": _icc(report, shared),
            "pairs_scored": raw["mebeauty_crop_vs_original"]["count"],
        }

    return {
        "photos": baseline["data"],
        "pairs": baseline["crop_pairs_data"],
        "pairs_scored_by_both": len(shared),
        "pairs_excluded": len((set(first) | set(second)) & excluded),
        "baseline": figures(baseline, before, floors[0] if floors else None),
        "candidate": figures(candidate, after, floors[1] if floors else None),
        "wilcoxon_candidate_smaller": {
            "statistic": float(test.statistic),
            "p_one_sided": float(test.pvalue),
            "pairs_smaller": int(np.sum(after < before)),
            "pairs_larger": int(np.sum(after > before)),
        },
    }


def _icc(report: dict[str, Any], pairs: list[str]) -> dict[str, float] | None:
    """ICC(A,1) of S(crop) vs S(original) over ``pairs`` (the report's own function)."""
    from ml.normality.cli import _agreement_icc

    return _agreement_icc([pair for pair in report["crop_pairs"] if pair["image"] in set(pairs)], MAP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--floors-from", nargs=2, type=Path, metavar=("BASELINE", "CANDIDATE"))
    parser.add_argument("--exclude-pairs-of", type=Path, metavar="REPORT")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    floors = None
    if args.floors_from:
        floors = tuple(
            json.loads(path.read_text())["residual_maps"][MAP]["noise_floor_95"] for path in args.floors_from
        )
    excluded = set()
    if args.exclude_pairs_of:
        excluded = {pair["image"] for pair in json.loads(args.exclude_pairs_of.read_text())["crop_pairs"]}
    result = compare(
        json.loads(args.baseline.read_text()), json.loads(args.candidate.read_text()), floors, excluded
    )
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
