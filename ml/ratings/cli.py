"""``python -m ml ratings ...``: inter-rater reliability of a long ratings CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from ml.cli import CommandError, print_json


def read_ratings_csv(path: Path, item: str, rater: str, rating: str):
    """The CSV's three columns as a ratings frame (``ml.ratings.reliability.ratings_frame``)."""
    import pandas as pd

    from ml.ratings.reliability import ratings_frame

    if not path.is_file():
        raise CommandError(f"No ratings file at {path}.")
    columns = {item: "item", rater: "rater", rating: "rating"}
    try:
        frame = pd.read_csv(path, usecols=list(columns), dtype={item: str, rater: str})
    except ValueError as error:
        raise CommandError(
            f"{path}: {error} (choose the columns with --item, --rater and --rating)."
        ) from error
    if frame.empty:
        raise CommandError(f"{path} holds no ratings.")
    return ratings_frame(frame.rename(columns=columns))


def _reliability(args: argparse.Namespace) -> int:
    from ml.ratings.reliability import reliability

    frame = read_ratings_csv(Path(args.ratings), args.item, args.rater, args.rating)
    scale = range(args.scale_min, args.scale_max + 1)
    report = reliability(frame, scale=scale, repeats=args.repeats, seed=args.seed)
    document = report.details() if args.details else report.summary()
    if args.panel_sizes:
        from ml.ratings.reliability import panel_size_reliability

        document["panel_sizes"] = panel_size_reliability(frame, args.panel_sizes, seed=args.seed)
    if args.json:
        print_json(document)
        return 0
    summary = report.summary()
    print(f"{summary['n_ratings']} ratings of {summary['n_items']} items by {summary['n_raters']} raters")
    if report.icc:
        low, high = report.icc.icc2_1_ci
        print(f"ICC(2,1) {report.icc.icc2_1:.3f} (95 % CI {low:.3f}-{high:.3f})")
        low, high = report.icc.icc2_k_ci
        print(f"ICC(2,k) {report.icc.icc2_k:.3f} (95 % CI {low:.3f}-{high:.3f}), k = {report.icc.raters}")
    if report.alpha_ordinal is not None:
        print(f"Krippendorff's alpha (ordinal) {report.alpha_ordinal:.3f}")
    if report.split_half:
        print(
            f"split-half r {report.split_half.r:.3f}, Spearman-Brown {report.split_half.spearman_brown:.3f} "
            f"({report.split_half.repeats} random rater splits)"
        )
    for problem in report.problems:
        print(f"not computed: {problem}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ratings`` and its subcommands to the ``python -m ml`` parser."""
    ratings = subparsers.add_parser("ratings", help="Human ratings: inter-rater reliability.")
    actions = ratings.add_subparsers(dest="ratings_command", required=True, metavar="ACTION")
    reliability = actions.add_parser(
        "reliability", help="ICC(2,1), ICC(2,k), Krippendorff's alpha and split-half of a long ratings CSV."
    )
    reliability.add_argument("ratings", help="Long CSV: one row per item, rater and rating.")
    reliability.add_argument("--item", default="item", help="Column naming the rated item (item).")
    reliability.add_argument("--rater", default="rater", help="Column naming the rater (rater).")
    reliability.add_argument("--rating", default="rating", help="Column holding the rating (rating).")
    reliability.add_argument("--scale-min", type=int, default=1, help="Lowest point of the scale (1).")
    reliability.add_argument("--scale-max", type=int, default=7, help="Highest point of the scale (7).")
    reliability.add_argument("--repeats", type=int, default=100, help="Random rater splits (100).")
    reliability.add_argument("--seed", type=int, default=0)
    reliability.add_argument("--details", action="store_true", help="Add the ICC block, SDs and problems.")
    reliability.add_argument(
        "--panel-sizes",
        type=int,
        nargs="+",
        help="Also the figures of random panels of these sizes (20 draws).",
    )
    reliability.add_argument("--json", action="store_true", help="Print a JSON document.")
    reliability.set_defaults(handler=_reliability)
