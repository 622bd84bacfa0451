"""``python -m ml normality ...``: score, ceiling, train-normalizer, extract-features, fit-regressor."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ml.cli import CommandError, print_json
from ml.config import data_dir
from ml.model_names import NORMALITY_AUTOENCODER, NORMALITY_INPAINTING, NORMALITY_STYLEGAN2
from ml.modelcard import ModelCard, card_path, write_card
from ml.normality.analysis import (
    DEFAULT_RESIDUAL_MAP,
    FIT_PIXELS,
    RESIDUAL_MAPS,
    build_normalizer,
    default_fit_pixels,
    fit_pixels_mask,
    normalizer_adapt_steps,
)
from ml.normality.scoring import HEATMAP_METRICS, REGIONS, RegionNotObservedError
from ml.normality.settings import DEFAULT_ADAPT_STEPS, DEFAULT_MIRROR_AVERAGE, DEFAULT_PROJECTION_STEPS
from ml.registry import file_sha256

MEBEAUTY_NOTE = "MEBeauty ratings are ATTRACTIVENESS ratings on a 1-10 scale, not normality ratings."
NORMALIZERS = {
    "inpainting": NORMALITY_INPAINTING,
    "autoencoder": NORMALITY_AUTOENCODER,
    "stylegan2": NORMALITY_STYLEGAN2,
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _scores_by_map(result: Any, maps: dict[str, Any]) -> dict[str, Any]:
    """The analysis' aligned and normalized face scored with each residual map (``{name: reference}``),
    on the pixels its fit used."""
    from ml.normality.scoring import score_pair

    return {
        map_name: score_pair(
            result.aligned, result.normalized, result.landmarks, reference=reference, observed=result.fit_mask
        )
        for map_name, reference in maps.items()
    }


def _aligned_face(
    path: Path, size: int, cache: dict[str, tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """``(aligned face, crop landmarks, observed pixels)`` from the cache (which does not know the
    observed pixels: ``None``), else by detection; ``None`` without a face."""
    from ml.core.imageio import load_image
    from ml.normality.autoencoder import largest_face_landmarks
    from ml.normality.preprocess import align_face

    if str(path) in cache:
        return (*cache[str(path)], None)
    image = load_image(path)
    landmarks = largest_face_landmarks(image)
    if landmarks is None:
        return None
    aligned = align_face(image, landmarks, size)
    return aligned.image, aligned.landmarks, aligned.observed


def _face_cache(args: argparse.Namespace, size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from ml.normality.autoencoder import cached_faces_by_source

    return cached_faces_by_source(Path(args.cache_dir), size) if args.cache_dir else {}


def _require_normalizer_weights(model: str) -> None:
    """Fail with the command that creates them when the normalizer's weights are missing."""
    from ml.normality import models

    if model == "autoencoder" and not models.autoencoder_weights_path().is_file():
        raise CommandError(
            f"No trained normalizer: {models.autoencoder_weights_path()} does not exist. "
            "Train the embedded normalizer with: python -m ml normality train-normalizer --data DIR "
            "(DIR holds mebeauty/ and fasseg/)."
        )
    if model == "inpainting" and not models.inpainting_weights_path().is_file():
        raise CommandError(
            f"No trained inpainting normalizer: {models.inpainting_weights_path()} does not exist. "
            "Train it with: python -m ml normality train-inpainter --data DIR --checkpoint FILE "
            "--cache-dir DIR --max-minutes N."
        )
    if model == "stylegan2" and not models.stylegan2_weights_path().is_file():
        raise CommandError(
            f"No StyleGAN2 weights: {models.stylegan2_weights_path()} does not exist. "
            "Convert official FFHQ weights to the rosinality g_ema layout and set "
            f"{models.STYLEGAN2_WEIGHTS_ENV} (docs/normality.md)."
        )


def _load_normalizer(
    model: str, steps: int | None, adapt_steps: int | None, weights: str | None = None
) -> tuple[Any, str]:
    """The normalizer for ``model`` (autoencoder|stylegan2), from ``weights`` or the shipped file, and
    its registry name; clear error if absent."""
    if weights is None:
        _require_normalizer_weights(model)
    elif not Path(weights).is_file():
        raise CommandError(f"--weights {weights} is not a file.")
    name = NORMALIZERS[model]
    return build_normalizer(name, weights, steps, adapt_steps), name


def _mirror_average(args: argparse.Namespace) -> bool:
    """``--mirror-average`` or, when not given, the analysis' default."""
    return DEFAULT_MIRROR_AVERAGE if args.mirror_average is None else args.mirror_average


def _normal_geometry(args: argparse.Namespace) -> Any:
    """The normal geometry of ``--geometry`` when ``--geometry-limit`` asks for the correction, else None."""
    from ml.normality.analysis import load_normal_geometry

    if args.geometry_limit is None:
        return None
    try:
        return load_normal_geometry(args.geometry)
    except (OSError, ValueError) as error:
        raise CommandError(str(error)) from error


def _geometry_setting(args: argparse.Namespace) -> dict[str, Any] | None:
    return None if args.geometry_limit is None else {"file": args.geometry, "limit_sd": args.geometry_limit}


def _residual_maps(name: str, weights: Path | None) -> dict[str, Any]:
    """The residual maps a validity run compares: the standardized map (when the normalizer has a
    residual reference of normal faces) and the raw PSE map, by name → reference (``None``: raw)."""
    from ml.normality.models import residual_reference

    reference = residual_reference(name, weights)
    return {"standardized": reference, "raw": None} if reference is not None else {"raw": None}


def _validate(args: argparse.Namespace) -> int:
    """Paired real clefts, simulated defects on held-out normal faces, clefts against normal faces;
    every figure for each residual map (standardized and raw), from one normalization per photo."""
    from ml.core.imageio import load_image
    from ml.core.subject import NoFaceError
    from ml.normality import validation
    from ml.normality.analysis import analyze_normality, mirror_averaged, region_weighted_fit
    from ml.normality.geometry import geometry_corrected
    from ml.normality.preprocess import symmetric_target
    from ml.normality.scoring import region_mask

    data = Path(args.data) if args.data else data_dir()
    name = NORMALIZERS[args.model]
    if args.weights is None:
        _require_normalizer_weights(args.model)
    weights = Path(args.weights) if args.weights else None
    maps = _residual_maps(name, weights)
    fit_pixels = args.fit_pixels or default_fit_pixels(name)
    # A missing or unreadable --geometry file stops the run before any photo.
    normal_geometry = _normal_geometry(args)

    def analyse(path: Path) -> tuple[Any, dict[str, Any]]:
        """The analysis and, per residual map, its score and heatmap over the aligned face."""
        result = analyze_normality(
            load_image(path),
            normalizer=name,
            weights=weights,
            rating=False,
            fit_pixels=fit_pixels,
            region_fit_weight=args.region_fit_weight,
            symmetry_weight=args.symmetry_weight,
            mirror_average=args.mirror_average,
            adapt_steps=args.adapt_steps,
            geometry=args.geometry,
            geometry_limit=args.geometry_limit,
        )
        return result, _scores_by_map(result, maps)

    per_map: dict[str, dict[str, Any]] = {map_name: {} for map_name in maps}
    pairs: dict[str, list[dict[str, Any]]] = {map_name: [] for map_name in maps}
    pairs_dir = data / "cleft-pairs"
    for cleft_path in sorted((pairs_dir / "cleft").glob("*.png"), key=lambda p: int(p.stem)):
        (cleft, cleft_scores), (_, twin_scores) = (
            analyse(cleft_path),
            analyse(pairs_dir / "inpainted" / cleft_path.name),
        )
        zone = validation.lip_nose_zone(cleft.landmarks, cleft.aligned.shape)
        face = region_mask(cleft.landmarks, cleft.aligned.shape, "face_no_eyes")
        if cleft.fit_mask is not None:
            face &= cleft.fit_mask
        for map_name in maps:
            peak = validation.heatmap_peak(cleft_scores[map_name].heatmap, face)
            pairs[map_name].append(
                {
                    "pair": cleft_path.stem,
                    "score_cleft": round(cleft_scores[map_name].score, 4),
                    "score_inpainted_twin": round(twin_scores[map_name].score, 4),
                    "cleft_lower": cleft_scores[map_name].score < twin_scores[map_name].score,
                    "texture_cleft": round(validation.region_texture(cleft.aligned, cleft.region_mask), 2),
                    "peak": peak,
                    "peak_in_lip_nose": bool(zone[peak]),
                }
            )
        _log(f"pair {cleft_path.stem}: {[(m, pairs[m][-1]) for m in maps]}")
    for map_name in maps:
        per_map[map_name]["paired_real"] = {
            "data": "cleft-pairs development pairs: real cleft photo vs the same photo with the cleft "
            "inpainted away by the source's authors (no age or identity confound)",
            "pairs": pairs[map_name],
            "cleft_lower": sum(p["cleft_lower"] for p in pairs[map_name]),
            "peak_in_lip_nose": sum(p["peak_in_lip_nose"] for p in pairs[map_name]),
            "count": len(pairs[map_name]),
        }

    with (data / "london" / "faces.csv").open(newline="") as handle:
        ages = {row["face"]: row["age"] for row in csv.DictReader(handle)}
    london = sorted((data / "london" / "neutral").glob("*.jpg"))[: args.normal_limit]
    normal_scores: dict[str, list[float]] = {map_name: [] for map_name in maps}
    by_band: dict[str, dict[str, list[float]]] = {map_name: {} for map_name in maps}
    textures: list[float] = []
    london_faces: list[dict[str, Any]] = []
    for path in london:
        try:
            result, scored = analyse(path)
        except (NoFaceError, RegionNotObservedError) as error:
            _log(f"{path.name}: not scored: {error}")
            continue
        textures.append(validation.region_texture(result.aligned, result.region_mask))
        for map_name in maps:
            normal_scores[map_name].append(scored[map_name].score)
            by_band[map_name].setdefault(validation.age_band(ages.get(path.stem)), []).append(
                scored[map_name].score
            )
        london_faces.append(
            {
                "face": path.stem,
                "age": ages.get(path.stem),
                "scores": {map_name: round(scored[map_name].score, 4) for map_name in maps},
                "texture": round(textures[-1], 2),
            }
        )
    for map_name in maps:
        cleft_scores = [p["score_cleft"] for p in pairs[map_name]]
        twin_scores = [p["score_inpainted_twin"] for p in pairs[map_name]]
        scores, bands = normal_scores[map_name], by_band[map_name]
        per_map[map_name]["groups"] = {
            "cleft": {
                "count": len(cleft_scores),
                "median_score": float(np.median(cleft_scores)),
                "ages": "infants",
            },
            "london_adults": {
                "count": len(scores),
                "median_score": float(np.median(scores)) if scores else None,
                "ages": "adults (London set, held out from training)",
            },
            "auroc_cleft_vs_london_adults": validation.auroc(cleft_scores, scores) if scores else None,
            "auroc_cleft_vs_london_adults_18_24": (
                validation.auroc(cleft_scores, bands["18-24"]) if bands.get("18-24") else None
            ),
            "auroc_cleft_vs_inpainted_twins": validation.auroc(cleft_scores, twin_scores),
            "texture": {
                "what": "SD of luminance in the scoring region (8-bit levels): photo detail and contrast",
                "median_cleft": float(np.median([p["texture_cleft"] for p in pairs[map_name]])),
                "median_london_adults": float(np.median(textures)) if textures else None,
                "spearman_s_vs_texture_all_faces": _spearman(
                    [*cleft_scores, *scores], [*(p["texture_cleft"] for p in pairs[map_name]), *textures]
                ),
            },
            "confound": "No normal photos of infants exist in the data: the only same-age comparison is "
            "the inpainted twins (the same children, synthetic normal lip). Against adults, age, framing "
            "and photo source differ as well as the cleft.",
        }
        per_map[map_name]["reference"] = {
            "data": "normal adult faces (London set, neutral studio photos, held out from training)",
            "heatmap": _heatmap_metric(map_name),
            **validation.reference_range(scores),
            "by_age_band": {
                band: validation.reference_range(values) for band, values in sorted(bands.items())
            },
        }
    _log(f"groups: {[(m, per_map[m]['groups']['auroc_cleft_vs_london_adults']) for m in maps]}")
    if args.age_similar:
        _compare_age_similar(args.age_similar, data, analyse, pairs, per_map)

    if args.defect_limit:
        from ml.normality.inpainting import InpaintingNormalizer

        # The steps the analysis runs (the paired test above): 0 adaptation steps means none.
        projection_steps = DEFAULT_PROJECTION_STEPS if args.model == "autoencoder" else None
        normalizer = build_normalizer(name, weights, projection_steps, args.adapt_steps)
        mirror_average = _mirror_average(args)
        if not args.cache_dir:
            raise CommandError(
                "--defect-limit needs --cache-dir with the held-out MEBeauty faces (train-inpainter)."
            )
        try:
            faces, observed = validation.held_out_defect_faces(
                Path(args.cache_dir), data, args.defect_skip, args.defect_limit, fit_pixels
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        if isinstance(normalizer, InpaintingNormalizer):

            def normalize(image: np.ndarray, landmarks: np.ndarray, _: np.ndarray | None) -> np.ndarray:
                return normalizer.normalized_image(image, landmarks)
        else:

            def normalize(image: np.ndarray, landmarks: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
                weights = region_weighted_fit(
                    mask, landmarks, image.shape, "mouth_nose", args.region_fit_weight
                )
                target = symmetric_target(image, landmarks, mask, args.symmetry_weight)
                normalized = normalizer.normalized_image(target, observed=weights)
                if mirror_average:
                    normalized = mirror_averaged(
                        lambda face, fit: normalizer.normalized_image(face, observed=fit),
                        target,
                        weights,
                        normalized,
                    )
                if normal_geometry is not None:
                    normalized, _ = geometry_corrected(
                        normalized, image, normal_geometry, args.geometry_limit
                    )
                return normalized

        evaluated = validation.evaluate_simulated_defects(
            faces, normalize, references=maps, observed=observed
        )
        for map_name, (mebeauty_scores, results) in evaluated.items():
            per_map[map_name]["simulated_defects"] = {
                "data": f"{len(faces)} held-out MEBeauty val faces (never trained on): SEMI-SYNTHETIC",
                "results": [dataclasses.asdict(result) for result in results],
            }
            groups = per_map[map_name]["groups"]
            groups["mebeauty_val_adults"] = {
                "count": len(mebeauty_scores),
                "median_score": float(np.median(mebeauty_scores)),
                "ages": "adults (MEBeauty aligned 224-px crops, held out from training)",
            }
            groups["auroc_cleft_vs_mebeauty_val_adults"] = validation.auroc(
                [p["score_cleft"] for p in pairs[map_name]], mebeauty_scores
            )
        _log(f"defects: {[(m, per_map[m]['simulated_defects']) for m in maps]}")
    primary = args.residual_map if args.residual_map in maps else "raw"
    report: dict[str, Any] = {
        "model": name,
        "weights": str(weights) if weights else "shipped",
        "fit_pixels": fit_pixels,
        "region_fit_weight": args.region_fit_weight,
        "symmetry_weight": args.symmetry_weight,
        "mirror_average": _mirror_average(args),
        "geometry": _geometry_setting(args),
        "adapt_steps": normalizer_adapt_steps(name, args.adapt_steps),
        "residual_map": primary,
        **per_map[primary],
        "london_faces": london_faces,
        "residual_maps": per_map,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print_json(report)
    return 0


def _age_similar_groups(chosen: dict[str, Any]) -> dict[str, list[str]]:
    """The two groups of an age-similar listing (see :func:`_compare_age_similar`), paths relative to the
    data directory."""
    return {"children": chosen["children"], "same_source_sample": chosen["same_source_sample"]["faces"]}


def _compare_age_similar(
    listing: str,
    data: Path,
    analyse: Callable[[Path], tuple[Any, dict[str, Any]]],
    pairs: dict[str, list[dict[str, Any]]],
    per_map: dict[str, dict[str, Any]],
) -> None:
    """The cleft photos against the normal faces of a similar age named in ``listing`` (JSON: ``children``
    and a ``same_source_sample`` of the same photo source, paths relative to the data directory, with
    how they were chosen), so that the age effect and the photo-source effect can be told apart."""
    from scipy.stats import mannwhitneyu

    from ml.core.subject import NoFaceError
    from ml.normality import validation

    def compare(lower: list[float], higher: list[float]) -> dict[str, float | None]:
        """AUROC of ``lower`` scoring below ``higher`` and the one-sided Mann–Whitney p of that."""
        if not lower or not higher:
            return {"auroc": None, "mann_whitney_p_one_sided": None}
        return {
            "auroc": validation.auroc(lower, higher),
            "mann_whitney_p_one_sided": float(mannwhitneyu(lower, higher, alternative="less").pvalue),
        }

    chosen = json.loads(Path(listing).read_text())
    groups = _age_similar_groups(chosen)
    scores: dict[str, dict[str, list[float]]] = {name: {m: [] for m in per_map} for name in groups}
    scored_faces: dict[str, list[str]] = {name: [] for name in groups}
    not_scored: dict[str, list[str]] = {name: [] for name in groups}
    for name, paths in groups.items():
        for relative in paths:
            try:
                _, scored = analyse(data / relative)
            except (NoFaceError, RegionNotObservedError) as error:
                not_scored[name].append(f"{relative}: {error}")
                continue
            scored_faces[name].append(relative)
            for map_name in per_map:
                scores[name][map_name].append(scored[map_name].score)
        _log(f"age-similar {name}: {len(paths) - len(not_scored[name])} of {len(paths)} scored")
    for map_name in per_map:
        cleft = [pair["score_cleft"] for pair in pairs[map_name]]
        children, sample = scores["children"][map_name], scores["same_source_sample"][map_name]
        per_map[map_name]["age_similar"] = {
            "listing": listing,
            "source": chosen["source"],
            "selected_by": chosen["selected_by"],
            "confound": chosen["caveat"],
            **{
                name: {
                    **({"what": chosen[name]["what"]} if name == "same_source_sample" else {}),
                    "listed": len(paths),
                    "not_scored": not_scored[name],
                    **validation.reference_range(scores[name][map_name]),
                    "scores": dict(
                        zip(scored_faces[name], (round(v, 4) for v in scores[name][map_name]), strict=True)
                    ),
                }
                for name, paths in groups.items()
            },
            "cleft_vs_children": compare(cleft, children),
            "cleft_vs_same_source_sample": compare(cleft, sample),
            "children_vs_same_source_sample": compare(children, sample),
        }


def _heatmap_metric(residual_map: str) -> str:
    from ml.normality.residual_reference import STANDARDIZED_METRIC

    return STANDARDIZED_METRIC if residual_map == "standardized" else "pse-ycbcr-eroded"


def _spearman(first: list[float], second: list[float]) -> float | None:
    from scipy.stats import spearmanr

    return float(spearmanr(first, second).statistic) if len(first) > 2 else None


def _framing(args: argparse.Namespace) -> int:
    """S of the same faces re-framed (crops, scales, shifts, rotations, JPEG) and the noise floor, for
    each residual map (standardized and raw) from one normalization per version."""
    from ml.core.imageio import load_image
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import NoFaceError, subject_landmarks
    from ml.normality import validation
    from ml.normality.analysis import analyze_normality

    data = Path(args.data) if args.data else data_dir()
    name = NORMALIZERS[args.model]
    if args.weights is None:
        _require_normalizer_weights(args.model)
    weights = Path(args.weights) if args.weights else None
    maps = _residual_maps(name, weights)
    fit_pixels = args.fit_pixels or default_fit_pixels(name)
    _normal_geometry(args)  # a missing or unreadable --geometry file stops the run before any photo

    def score(image: np.ndarray) -> dict[str, float]:
        result = analyze_normality(
            image,
            normalizer=name,
            weights=weights,
            rating=False,
            fit_pixels=fit_pixels,
            region_fit_weight=args.region_fit_weight,
            symmetry_weight=args.symmetry_weight,
            mirror_average=args.mirror_average,
            adapt_steps=args.adapt_steps,
            geometry=args.geometry,
            geometry_limit=args.geometry_limit,
        )
        scores = {map_name: scored.score for map_name, scored in _scores_by_map(result, maps).items()}
        # Kept beside the scores: how much of the face outline the framing left inside the photo.
        return {**scores, "face_fraction": result.data["observed"]["face_fraction"]}

    differences: dict[str, dict[str, list[float]]] = {map_name: {} for map_name in maps}
    per_face = []
    unscored: list[str] = []
    for path in sorted((data / "london" / args.london_expression).glob("*.jpg"))[args.skip :][: args.limit]:
        image = load_image(path)
        try:
            landmarks = subject_landmarks(detect_faces_with_landmarks(image))
        except NoFaceError:
            continue
        scores = {}
        for variant, framed in validation.reframings(image, landmarks).items():
            try:
                scores[variant] = score(framed)
            except (NoFaceError, RegionNotObservedError) as error:
                _log(f"{path.name} {variant}: not scored: {error}")
                unscored.append(f"{path.stem} {variant}: {error}")
        for variant, values in scores.items():
            if variant != "original" and "original" in scores:
                for map_name in maps:
                    differences[map_name].setdefault(variant, []).append(
                        values[map_name] - scores["original"][map_name]
                    )
        per_face.append(
            {
                "face": path.stem,
                "scores": {k: {m: round(v, 4) for m, v in s.items()} for k, s in scores.items()},
            }
        )
        _log(f"{path.name}: {per_face[-1]['scores']}")
    crops: dict[str, list[float]] = {map_name: [] for map_name in maps}
    crop_pairs = []
    for row in _crop_pairs(data, args.crop_split, args.crop_skip, args.crop_limit, args.crop_sample_seed):
        try:
            crop = score(load_image(data / "mebeauty" / row["image"]))
            original = score(load_image(data / "mebeauty" / row["original"]))
        except (NoFaceError, RegionNotObservedError) as error:
            unscored.append(f"MEBeauty {row['image']}: {error}")
            continue
        for map_name in maps:
            crops[map_name].append(crop[map_name] - original[map_name])
        crop_pairs.append(
            {
                "image": row["image"],
                "crop": {m: round(v, 4) for m, v in crop.items()},
                "original": {m: round(v, 4) for m, v in original.items()},
            }
        )
    per_map = {}
    for map_name in maps:
        reframed = [v for values in differences[map_name].values() for v in values]
        # Crop pairs alone (--limit 0) have no re-framed photos to take a floor from.
        floor = validation.noise_floor(reframed) if reframed else None
        found = np.abs(crops[map_name])
        per_map[map_name] = {
            "heatmap": _heatmap_metric(map_name),
            "noise_floor_95": floor,
            "median_abs_difference": {
                k: float(np.median(np.abs(v))) for k, v in differences[map_name].items()
            },
            "within_floor": {k: float(np.mean(np.abs(v) <= floor)) for k, v in differences[map_name].items()},
            "mebeauty_crop_vs_original": {
                "count": len(found),
                "median_abs_difference": float(np.median(found)) if len(found) else None,
                "within_floor_fraction": float(np.mean(found <= floor))
                if len(found) and floor is not None
                else None,
                "icc_a1": _agreement_icc(crop_pairs, map_name),
            },
        }
    primary = args.residual_map if args.residual_map in maps else "raw"
    report = {
        "model": name,
        "data": f"{len(per_face)} London {args.london_expression} studio photos (900 px, adults), re-framed",
        "crop_pairs_data": f"{len(crop_pairs)} MEBeauty {args.crop_split}-split crop/original pairs"
        + ("" if args.crop_sample_seed is None else f" (seeded sample {args.crop_sample_seed})"),
        "fit_pixels": fit_pixels,
        "region_fit_weight": args.region_fit_weight,
        "symmetry_weight": args.symmetry_weight,
        "mirror_average": _mirror_average(args),
        "geometry": _geometry_setting(args),
        "adapt_steps": normalizer_adapt_steps(name, args.adapt_steps),
        "not_scored": unscored,
        "residual_map": primary,
        **per_map[primary],
        "residual_maps": per_map,
        "faces": per_face,
        "crop_pairs": crop_pairs,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print_json({k: v for k, v in report.items() if k not in ("faces", "crop_pairs")})
    return 0


def _crop_pairs(
    data: Path, split: str, skip: int, limit: int, sample_seed: int | None
) -> list[dict[str, str]]:
    """MEBeauty rows of ``split`` with an original photo: ``limit`` of them after ``skip`` in file order,
    or a seeded random sample of ``limit`` (without replacement) when ``sample_seed`` is given."""
    rows = [
        row
        for row in csv.DictReader((data / "mebeauty" / "images.csv").open())
        if row["split"] == split and row["original"]
    ]
    if sample_seed is None:
        return rows[skip:][:limit]
    chosen = np.random.default_rng(sample_seed).choice(len(rows), min(limit, len(rows)), replace=False)
    return [rows[index] for index in sorted(chosen)]


def _agreement_icc(crop_pairs: list[dict[str, Any]], map_name: str) -> dict[str, float] | None:
    """ICC(A,1) of S from the crop and S from the original (two-way, absolute agreement, single measure):
    how well one framing's S stands in for the other's, on the common scale of S."""
    import pandas as pd

    from ml.ratings.reliability import icc

    if len(crop_pairs) < 3:
        return None
    frame = pd.DataFrame(
        [
            {"item": pair["image"], "rater": framing, "rating": pair[framing][map_name]}
            for pair in crop_pairs
            for framing in ("crop", "original")
        ]
    )
    result = icc(frame)
    return {"icc": result.icc2_1, "ci95": list(result.icc2_1_ci), "pairs": result.items}


def _fit_geometry(args: argparse.Namespace) -> int:
    """The normal geometry of the nose and mouth (:mod:`ml.normality.geometry`) from the autoencoder's
    TRAINING faces (never the cleft pairs, the London photos or the held-out faces)."""
    from ml.normality.autoencoder import aligned_faces_cached, training_image_paths
    from ml.normality.geometry import average_face_frame, fit_normal_geometry, geometry_landmarks

    data = Path(args.data) if args.data else data_dir()
    train_paths, _ = training_image_paths(data)
    cache = Path(args.cache_dir) / f"train-{args.size}.npz" if args.cache_dir else None
    faces, landmarks, _ = aligned_faces_cached(train_paths, args.size, cache, progress=_log)
    centre, scale = average_face_frame(landmarks)
    found = []
    for index, face in enumerate(faces):
        found.append(geometry_landmarks(face, centre, scale))
        if (index + 1) % 200 == 0:
            _log(f"landmarks of {index + 1}/{len(faces)} training faces")
    geometry = fit_normal_geometry(
        np.stack(found),
        args.size,
        centre,
        scale,
        provenance={
            "data": "MEBeauty train split and FASSEG frontal training faces (the autoencoder's training "
            "faces; no cleft pair, London photo or held-out face)",
            "landmarks": "dlib 68-point shape predictor on the aligned crop, in the average face frame",
            "command": f"python -m ml normality fit-geometry --data DATA --size {args.size} --out {args.out}",
        },
    )
    geometry.save(Path(args.out))
    _log(
        f"normal geometry of {len(found)} faces (alpha {geometry.alpha}, {geometry.provenance}) -> {args.out}"
    )
    return 0


def _fit_residual_reference(args: argparse.Namespace) -> int:
    """Per-pixel median and MAD of the normalizer's PSE on normal TRAINING faces (never the cleft pairs
    or the held-out faces), stored fp16 beside the weights with its provenance in the model card."""
    import torch

    from ml.modelcard import read_card
    from ml.normality import residual_reference
    from ml.normality.analysis import build_normalizer, fit_pixels_mask
    from ml.normality.autoencoder import aligned_faces_and_masks_cached, training_image_paths
    from ml.normality.inpainting import InpaintingNormalizer
    from ml.normality.scoring import pse_heatmap
    from ml.registry import registry

    torch.set_num_threads(args.threads)
    data = Path(args.data) if args.data else data_dir()
    name = NORMALIZERS[args.model]
    if args.weights is None:
        _require_normalizer_weights(args.model)
    weights = Path(args.weights) if args.weights else registry.spec(name).weights_path
    # The inpainting normalizer redraws its hole from everything else: it has no fit pixels.
    fit_pixels = "all" if args.model == "inpainting" else args.fit_pixels or default_fit_pixels(name)
    train_paths, _ = training_image_paths(data)
    chosen = sorted(np.random.default_rng(args.seed).choice(len(train_paths), args.limit, replace=False))
    paths = [train_paths[index] for index in chosen]
    cache = Path(args.cache_dir) / f"reference-{args.limit}-{args.seed}-128.npz" if args.cache_dir else None
    faces, landmarks, observed, _ = aligned_faces_and_masks_cached(paths, 128, cache, progress=_log)
    normalizer = build_normalizer(name, weights, DEFAULT_PROJECTION_STEPS, DEFAULT_ADAPT_STEPS)
    heatmaps, fitted = [], []
    for index, (face, points, face_observed) in enumerate(zip(faces, landmarks, observed, strict=True)):
        mask = fit_pixels_mask(face_observed, points, fit_pixels)
        if isinstance(normalizer, InpaintingNormalizer):
            normalized = normalizer.normalized_image(face, points)
        else:
            normalized = normalizer.normalized_image(face, observed=mask)
        heatmaps.append(pse_heatmap(face, normalized, observed=mask))
        fitted.append(np.ones(face.shape[:2], dtype=bool) if mask is None else mask)
        if (index + 1) % 20 == 0:
            _log(f"normalized {index + 1}/{len(faces)} training faces")
    provenance = {
        "normalizer": name,
        "normalizer_weights_sha256": file_sha256(weights),
        "faces": len(heatmaps),
        "data": f"{len(heatmaps)} normal training faces (seeded sample {args.seed} of the normalizer's "
        "MEBeauty train split and FASSEG frontal training faces; no cleft pair, no held-out face)",
        "statistic": "per pixel and YCbCr channel, over the faces whose fit used that pixel: median and "
        "1.4826 x MAD of the eroded PSE, Gaussian sigma 2 px, scale floored at 0.25 x its median over the "
        "pixels the normalizer changes",
        "projection_steps": 0 if isinstance(normalizer, InpaintingNormalizer) else normalizer.config.steps,
        "adapt_steps": normalizer.adapt_steps,
        # Each face is fitted and compared on these pixels, as the analysis with the same fit pixels does.
        "fit_pixels": fit_pixels,
        "command": "python -m ml " + " ".join(sys.argv[1:]),
    }
    reference = residual_reference.fit_residual_reference(np.stack(heatmaps), provenance, np.stack(fitted))
    out = residual_reference.residual_reference_path(weights)
    residual_reference.save_residual_reference(reference, out)
    provenance = {**provenance, "file": out.name, "sha256": file_sha256(out)}
    card_file = card_path(weights)
    if card_file.is_file():
        card = read_card(card_file)
        write_card(
            card_file, dataclasses.replace(card, details={**card.details, "residual_reference": provenance})
        )
    print_json(provenance)
    return 0


def _write_reference(args: argparse.Namespace) -> int:
    """Put the reference range (from ``validate``) and the noise floor (from ``framing``) into the
    normalizer's model card, where the analysis reads them for the pages."""
    from ml.modelcard import read_card
    from ml.normality import models

    weights = Path(args.weights) if args.weights else models.inpainting_weights_path()
    card_file = card_path(weights)
    if not card_file.is_file():
        raise CommandError(f"No model card {card_file.name} beside {weights}.")
    validated = json.loads(Path(args.validate).read_text())
    framing = json.loads(Path(args.framing).read_text())
    card = read_card(card_file)
    maps = validated.get("residual_maps", {}), framing.get("residual_maps", {})
    if args.residual_map not in maps[0] or args.residual_map not in maps[1]:
        raise CommandError(
            f"The validate and framing reports must both hold figures of the {args.residual_map} residual "
            "map (reports of this version do, for each map the normalizer has)."
        )
    fit_pixels = {report.get("fit_pixels", "all") for report in (validated, framing)}
    if len(fit_pixels) != 1:
        raise CommandError(
            f"The validate and framing reports were made with different fit pixels: {fit_pixels}."
        )
    reference = {
        **maps[0][args.residual_map]["reference"],
        "fit_pixels": fit_pixels.pop(),
        "noise_floor": maps[1][args.residual_map]["noise_floor_95"],
        "noise_floor_meaning": "95th percentile of |S(re-framed) - S(original)| over "
        f"{framing['data']}: tight/loose crop, 0.5-2x scale, shifts, 5-degree rotations, JPEG 75/50",
    }
    write_card(card_file, dataclasses.replace(card, details={**card.details, "reference": reference}))
    if args.measures_floor:
        # The cohort and comparison pages call a pre-post change of S "beyond noise" above this floor.
        floor_document = {
            "what": "Noise floor of the normality score S for the measures' 'beyond noise' logic: "
            f"{reference['noise_floor_meaning']}. Read as a repeatability coefficient (95 % of "
            "re-framings of the same photo change S by less).",
            "command": "python -m ml " + " ".join(sys.argv[1:]),
            "normalizer": card.name,
            "normalizer_version": card.version,
            "heatmap": reference["heatmap"],
            "fit_pixels": reference["fit_pixels"],
            "measures": {
                "normality_score": {
                    "repeatability_coefficient": reference["noise_floor"],
                    "photos": len(framing["faces"]),
                }
            },
        }
        Path(args.measures_floor).write_text(json.dumps(floor_document, indent=1) + "\n")
    print_json(reference)
    return 0


def _score(args: argparse.Namespace) -> int:
    from ml.core.imageio import encode_png
    from ml.core.subject import NoFaceError
    from ml.normality import models
    from ml.normality.analysis import NormalizerUnavailableError, analyze_normality, load_photo
    from ml.normality.scoring import heatmap_overlay

    if args.weights is None:
        _require_normalizer_weights(args.model)
    if not args.no_rating and args.regressor is None and not models.regressor_path().is_file():
        raise CommandError(
            "No fitted rating regressor. Fit one with 'python -m ml normality extract-features --data DIR "
            "--out features.csv' then 'python -m ml normality fit-regressor --features features.csv', "
            "or pass --no-rating."
        )
    _normal_geometry(args)
    image, _ = load_photo(args.image)
    try:
        analysis = analyze_normality(
            image,
            region=args.region,
            metric=args.metric,
            normalizer=NORMALIZERS[args.model],
            weights=args.weights,
            rating=not args.no_rating,
            regressor_weights=args.regressor,
            projection_steps=args.steps,
            adapt_steps=args.adapt_steps,
            residual_map=args.residual_map,
            fit_pixels=args.fit_pixels,
            region_fit_weight=args.region_fit_weight,
            symmetry_weight=args.symmetry_weight,
            mirror_average=args.mirror_average,
            geometry=args.geometry,
            geometry_limit=args.geometry_limit,
        )
    except (NormalizerUnavailableError, NoFaceError, RegionNotObservedError) as error:
        raise CommandError(str(error)) from error
    if args.heatmap:
        Path(args.heatmap).write_bytes(
            encode_png(heatmap_overlay(analysis.aligned, analysis.heatmap, analysis.region_mask))
        )
    if args.normalized:
        Path(args.normalized).write_bytes(encode_png(analysis.normalized))
    document = analysis.data
    if args.json:
        print_json(document)
    else:
        print(
            f"score {document['score']:.4f} ({document['region']}, {document['metric']['heatmap']}, "
            f"perceptual {document['metric']['perceptual']})"
        )
        if document["rating"] is not None:
            print(f"rating {document['rating']['value']:.2f} on 1-7 ({document['rating']['trained_on']})")
    return 0


def _ceiling(args: argparse.Namespace) -> int:
    from ml.normality.regression import read_ratings, split_half_ceiling

    path = Path(args.ratings) if args.ratings else data_dir() / "mebeauty" / "ratings.csv"
    ceiling = split_half_ceiling(read_ratings(path), repeats=args.repeats, seed=args.seed)
    document = {"ratings": str(path), "note": MEBEAUTY_NOTE, **dataclasses.asdict(ceiling)}
    if args.json:
        print_json(document)
    else:
        print(MEBEAUTY_NOTE)
        print(
            f"split-half r {ceiling.split_half_r:.3f} ± {ceiling.split_half_r_sd:.3f}; Spearman-Brown "
            f"{ceiling.spearman_brown_r:.3f} ± {ceiling.spearman_brown_r_sd:.3f} "
            f"({ceiling.faces} faces, median {ceiling.median_raters:.0f} raters, {ceiling.repeats} splits)"
        )
    return 0


def _train_normalizer(args: argparse.Namespace) -> int:
    import torch

    from ml.normality import models
    from ml.normality.autoencoder import (
        FaceAutoencoder,
        aligned_faces_cached,
        load_autoencoder,
        save_autoencoder,
        train_autoencoder,
        training_image_paths,
    )

    if args.exclude_age_similar and not args.add_300w:
        raise CommandError("--exclude-age-similar leaves landmarks300w faces out: it needs --add-300w.")
    # Weights to continue are checked before the alignment, which takes minutes.
    if args.init_weights:
        model = load_autoencoder(Path(args.init_weights))[0]
        if model.size != args.size:
            raise CommandError(f"--init-weights holds a {model.size}-px model; --size is {args.size}.")
        _log(f"continuing from {args.init_weights}")
    else:
        model = FaceAutoencoder(size=args.size)
    data = Path(args.data) if args.data else data_dir()
    train_paths, held_out_paths = training_image_paths(data)
    if args.max_images:
        train_paths, held_out_paths = (
            train_paths[: args.max_images],
            held_out_paths[: max(1, args.max_images // 4)],
        )
    _log(f"aligning {len(train_paths)} training and {len(held_out_paths)} held-out photos at {args.size} px")
    cache = Path(args.cache_dir) if args.cache_dir else None
    train_faces = aligned_faces_cached(
        train_paths, args.size, cache and cache / f"train-{args.size}.npz", progress=_log
    )[0]
    held_out_faces = (
        aligned_faces_cached(
            held_out_paths, args.size, cache and cache / f"held-out-{args.size}.npz", progress=_log
        )[0]
        if held_out_paths
        else None
    )
    sources = "MEBeauty train and FASSEG frontal faces"
    if args.add_300w:
        from ml.normality.inpainting import annotated_faces

        excluded: list[str] = []
        if args.exclude_age_similar:
            groups = _age_similar_groups(json.loads(Path(args.exclude_age_similar).read_text()))
            excluded = [name for names in groups.values() for name in names]
        annotated = annotated_faces(data, args.size, exclude=excluded)[0]
        train_faces = np.concatenate([train_faces, annotated])
        sources += f", {len(annotated)} landmarks300w faces of all ages"
        if excluded:
            sources += f" (the {len(excluded)} faces of the age-similar comparison left out)"
        _log(f"added {len(annotated)} landmarks300w faces aligned with their human landmarks")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = train_autoencoder(
        train_faces,
        held_out_faces,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        model=model,
        seed=args.seed,
        log=_log,
        max_seconds=args.max_minutes * 60 if args.max_minutes else None,
    )
    out = Path(args.out) if args.out else models.autoencoder_weights_path()
    card = {
        "model": models.AUTOENCODER_MODEL,
        "trained_on": {"faces": len(train_faces), "sources": sources, "data": str(data)},
        "initialised_from": Path(args.init_weights).name if args.init_weights else None,
        "held_out": "MEBeauty val split" if held_out_faces is not None else None,
        "training": {
            "steps": len(result.losses),
            "max_steps": args.steps,
            "max_minutes": args.max_minutes,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "seconds": round(result.seconds, 1),
            "final_loss": float(np.mean(result.losses[-50:])),
        },
        "metrics": {f"held_out_{key}": value for key, value in result.held_out.items()},
        "limitations": "Small autoencoder: blurry reconstructions; MEBeauty faces are mostly normal adults. "
        "Weights are research-use only (MEBeauty licence).",
    }
    save_autoencoder(result.model, out, card)
    write_card(
        card_path(out),
        ModelCard(
            name=models.AUTOENCODER_MODEL,
            task="normality",
            version=f"{args.size}px-{len(result.losses)}steps-{file_sha256(out)[:8]}",
            description="Convolutional autoencoder of normal faces (embedded normalizer): decoder = "
            "generator, encoder = start latent of the personalized normalization (Hayajneh et al.; "
            "Boyaci et al. 2020).",
            data=f"{len(train_faces)} faces aligned at {args.size} px ({sources}); "
            f"held out: {card['held_out'] or 'none'}.",
            command="python -m ml " + " ".join(sys.argv[1:]),
            licence="Weights trained on MEBeauty (non-commercial research only), FASSEG"
            + (" and iBUG 300-W (annotations non-commercial research only)" if args.add_300w else "")
            + ": research use only.",
            limitations=card["limitations"],
            metrics=card["metrics"],
            weights=out.name,
            weights_sha256=file_sha256(out),
            details={"training": card["training"]},
        ),
    )
    print_json({"weights": out.name, **card})
    return 0


def _train_inpainter(args: argparse.Namespace) -> int:
    """Train (or resume) the inpainting normalizer; every checkpoint also writes fp16 weights and a card,
    so a job stopped at any time leaves a usable, honestly described model."""
    import torch

    from ml.normality import inpainting, models
    from ml.normality.autoencoder import aligned_faces_cached, training_image_paths

    data = Path(args.data) if args.data else data_dir()
    if args.threads:
        torch.set_num_threads(args.threads)
    cache = Path(args.cache_dir)
    train_paths, held_out_paths = training_image_paths(data)
    _log(f"aligning {len(train_paths)} MEBeauty train + FASSEG and {len(held_out_paths)} held-out photos")
    faces, landmarks, _ = aligned_faces_cached(
        train_paths, args.size, cache / f"train-{args.size}.npz", progress=_log
    )
    held_faces, held_landmarks, _ = aligned_faces_cached(
        held_out_paths, args.size, cache / f"held-out-{args.size}.npz", progress=_log
    )
    annotated = inpainting.annotated_faces(data, args.size)
    faces = np.concatenate([faces, annotated[0]])
    landmarks = np.concatenate([landmarks, annotated[1]])
    _log(f"{len(faces)} training faces ({len(annotated[0])} from 300-W), {len(held_faces)} held out")
    checkpoint = Path(args.checkpoint)
    if checkpoint.is_file():
        state = inpainting.load_checkpoint(checkpoint, args.learning_rate)
    elif args.init:
        state = inpainting.checkpoint_from_weights(Path(args.init), args.learning_rate)
        if state.model.size != args.size:
            raise CommandError(f"--init weights are {state.model.size} px, not --size {args.size}.")
    else:
        state = inpainting.new_checkpoint(args.size, args.learning_rate)
    origin_steps = int(state.origin.get("training", {}).get("steps", 0))
    _log(
        f"starting at step {state.step} ({state.seconds:.0f} s spent)"
        + (f", from {state.origin['weights']} ({origin_steps} steps)" if state.origin else "")
    )
    out = Path(args.out) if args.out else models.inpainting_weights_path()
    command = "python -m ml " + " ".join(sys.argv[1:])

    def export(current: inpainting.InpaintingCheckpoint) -> None:
        inpainting.save_checkpoint(current, checkpoint)
        quality = inpainting.held_out_quality(current.model, held_faces, held_landmarks)
        training = {
            "steps": current.step,
            "seconds": round(current.seconds, 1),
            "max_minutes": args.max_minutes,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "final_loss": float(np.mean(current.losses[-50:])),
            "threads": torch.get_num_threads(),
            "warmup_steps": args.warmup_steps,
            "score_time_holes": args.score_time_holes,
            "seed": args.seed,
            **({"initialised_from": current.origin} if current.origin else {}),
            "total_steps": origin_steps + current.step,
        }
        limitations = (
            f"Research baseline: {origin_steps + current.step} optimiser steps on one CPU thread at 128 px, "
            "so the reconstructed lip and nose are blurry and close to an average of the training faces. The "
            "training faces are mostly adults (MEBeauty, 300-W); children are few and unlabelled. "
            "Validity figures are in docs/reports/normality-real-faces.md. Research use only."
        )
        inpainting.save_inpainter(current.model, out, {"training": training, "held_out": quality})
        write_card(
            card_path(out),
            ModelCard(
                name=models.INPAINTING_MODEL,
                task="normality",
                version=f"{args.size}px-{origin_steps + current.step}steps-{file_sha256(out)[:8]}",
                description="Inpainting normalizer (Hayajneh et al., IEEE JBHI 2025): a U-Net reconstructs "
                "the hidden mouth-nose region of the aligned face from the rest of the face, so the rest "
                "stays the person's own; the PSE score compares the photo with this personalized normal.",
                data=f"{len(faces)} normal faces aligned at {args.size} px: MEBeauty train, FASSEG frontal "
                f"and iBUG 300-W (AFW, HELEN train; {len(annotated[0])} faces of all ages, human "
                f"landmarks); held out: {len(held_faces)} MEBeauty val faces.",
                command=command,
                licence="Weights trained on MEBeauty (non-commercial research only), FASSEG and 300-W "
                "(non-commercial research only): research use only.",
                limitations=limitations,
                metrics={f"held_out_{key}": value for key, value in quality.items()},
                weights=out.name,
                weights_sha256=file_sha256(out),
                details={"training": training, "hole_margin_iod": inpainting.DEFAULT_MARGIN},
            ),
        )
        _log(f"checkpoint at step {current.step}: held-out hole L1 {quality['hole_l1_levels']:.2f} levels")

    inpainting.train_inpainter(
        faces,
        landmarks,
        state,
        max_seconds=args.max_minutes * 60,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        checkpoint_every=args.checkpoint_minutes * 60,
        on_checkpoint=export,
        log=_log,
        warmup_steps=args.warmup_steps,
        score_time_fraction=args.score_time_holes,
    )
    print_json({"weights": out.name, "steps": state.step, "seconds": round(state.seconds, 1)})
    return 0


def _extract_features(args: argparse.Namespace) -> int:
    from ml.normality.features import FEATURE_NAMES, candidate_features
    from ml.registry import registry

    data = Path(args.data) if args.data else data_dir()
    table = data / "mebeauty" / "images.csv"
    if not table.is_file():
        raise CommandError(f"{table} not found: --data must hold mebeauty/images.csv.")
    normalizer, model_name = _load_normalizer(args.model, args.steps, args.adapt_steps, args.weights)
    # The regressor records these weights, so that the analysis computes its features with them.
    weights_sha256 = registry.describe(model_name, args.weights)["weights_sha256"]
    with table.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if args.split in ("all", row["split"])]
    if args.sample:
        # A random subset spans the rating range; the CSV is ordered by sex and ethnicity.
        chosen = np.random.default_rng(args.seed).choice(
            len(rows), min(args.sample, len(rows)), replace=False
        )
        rows = [rows[i] for i in sorted(chosen)]
    rows = rows[args.skip :][: args.limit or None]
    fit_pixels = args.fit_pixels or default_fit_pixels(model_name)
    # Cached crops do not say which of their pixels are padding; fits on the observed pixels align anew.
    cache = _face_cache(args, normalizer.decoder.size) if fit_pixels == "all" else {}
    out = Path(args.out)
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "image",
                "attractiveness_1_10",
                *FEATURE_NAMES,
                "perceptual_metric",
                "candidates",
                "projection_steps",
                "adapt_steps",
                "fit_pixels",
                "weights_sha256",
            ]
        )
        for index, row in enumerate(rows):
            face = _aligned_face(data / "mebeauty" / row["image"], normalizer.decoder.size, cache)
            if face is None:
                _log(f"skipped {row['image']}: no face found")
                continue
            fit_mask = fit_pixels_mask(face[2], face[1], fit_pixels)
            w_raw, candidates = normalizer.candidates(face[0], args.candidates, observed=fit_mask)
            features = candidate_features(
                face[0], [(c.image, c.w_norm) for c in candidates], w_raw, normalizer.perceptual, fit_mask
            )
            writer.writerow(
                [
                    row["image"],
                    row["mean_score"],
                    *(features[n] for n in FEATURE_NAMES),
                    normalizer.metric,
                    args.candidates,
                    normalizer.config.steps,
                    normalizer.adapt_steps,
                    fit_pixels,
                    weights_sha256,
                ]
            )
            handle.flush()
            _log(f"{index + 1}/{len(rows)} {row['image']}")
    _log(f"wrote {out}. {MEBEAUTY_NOTE}")
    return 0


def _normalizer_settings(rows: list[dict[str, str]], candidates: int) -> dict[str, Any]:
    """K, projection and adaptation steps, fit pixels and the normalizer weights' SHA-256 the features
    were extracted with (one setting per file; features written before fit pixels existed were fitted on
    every pixel, and those written before the weights were recorded name none)."""
    settings: dict[str, Any] = {"candidates": candidates, "fit_pixels": "all"}
    for name in ("candidates", "projection_steps", "adapt_steps", "fit_pixels", "weights_sha256"):
        values = {row[name] for row in rows if row.get(name)}
        if len(values) > 1:
            raise CommandError(
                f"The features mix {name} values {sorted(values)}: extract them with one setting."
            )
        if values:
            value = values.pop()
            settings[name] = value if name in ("fit_pixels", "weights_sha256") else int(value)
    return settings


def _fit_regressor(args: argparse.Namespace) -> int:
    if args.images or args.ratings:
        if args.features:
            raise CommandError("Give either --features or --images with --ratings, not both.")
        if not (args.images and args.ratings):
            raise CommandError("--images and --ratings go together.")
        return _fit_regressor_on_ratings(args)
    if not args.features:
        raise CommandError("Give --images DIR --ratings CSV (or --features CSV from extract-features).")
    return _fit_regressor_on_features(args)


def _item_ratings(args: argparse.Namespace) -> Any:
    """The ratings CSV as a frame with item, rating and, where present, rater and group columns."""
    import pandas as pd

    path = Path(args.ratings)
    if not path.is_file():
        raise CommandError(f"No ratings file at {path}.")
    header = pd.read_csv(path, nrows=0).columns
    wanted = {args.item: "item", args.rating: "rating"}
    for option, name in ((args.rater, "rater"), (args.group, "group")):
        if option:
            wanted[option] = name
    missing = [column for column in wanted if column not in header]
    if missing:
        raise CommandError(
            f"{path} lacks the column(s) {', '.join(missing)} (see --item, --rating, --rater)."
        )
    frame = pd.read_csv(
        path, usecols=list(wanted), dtype={column: str for column in wanted if column != args.rating}
    )
    frame = frame.rename(columns=wanted)
    frame["rating"] = pd.to_numeric(frame["rating"], errors="coerce")
    if frame["rating"].isna().any():
        raise CommandError(f"{path}: column {args.rating} has a row without a number.")
    return frame


def _fit_regressor_on_ratings(args: argparse.Namespace) -> int:
    """Features of DIR/<item>.jpg for every rated item, the mean rating per item, then calibrate."""
    import joblib

    from ml.config import repo_root
    from ml.normality import models
    from ml.normality.calibration import (
        FeatureCache,
        Sample,
        calibrate,
        feature_vector,
        features_for_images,
        images_for_item,
        regressor_document,
        rescale,
    )
    from ml.normality.regression import REGRESSOR_NAMES
    from ml.ratings.reliability import ratings_frame, split_half

    frame = _item_ratings(args)
    low, high = args.scale
    means = frame.groupby("item")["rating"].mean()
    groups = frame.groupby("item")["group"].first() if "group" in frame else means.index.to_series()
    folders = [Path(folder) for folder in args.images]
    for folder in folders:
        if not folder.is_dir():
            raise CommandError(f"--images {folder} is not a folder.")
    items = [item for item in means.index if images_for_item(folders, item)][: args.limit or None]
    unmatched = len(means) - len(items) if not args.limit else 0
    if not items:
        raise CommandError(f"No rated item has a photo DIR/<item>.jpg|png in {', '.join(map(str, folders))}.")
    if args.model == "autoencoder":
        steps = args.steps or DEFAULT_PROJECTION_STEPS
        adapt = DEFAULT_ADAPT_STEPS if args.adapt_steps is None else args.adapt_steps
    else:
        steps, adapt = args.steps, args.adapt_steps
    normalizer, model_name = _load_normalizer(args.model, steps, adapt)
    from ml.registry import registry

    settings = {
        "candidates": args.candidates,
        "projection_steps": normalizer.config.steps,
        "adapt_steps": normalizer.adapt_steps,
        "fit_pixels": args.fit_pixels or default_fit_pixels(model_name),
        "weights_sha256": registry.describe(model_name)["weights_sha256"],
    }
    cache_setting = {**settings, "model": model_name, "perceptual": normalizer.metric}
    cache_dir = (
        Path(args.cache_dir) if args.cache_dir else repo_root() / "var" / "cache" / "normality-features"
    )
    paths = {item: images_for_item(folders, item) for item in items}
    features = features_for_images(
        [path for item in items for path in paths[item]],
        normalizer,
        args.candidates,
        FeatureCache(cache_dir, cache_setting),
        log=_log,
        fit_pixels=settings["fit_pixels"],
    )
    samples = [
        Sample(
            item=item,
            group=str(groups[item]),
            features=feature_vector(features[path]),
            target=float(rescale(means[item], low, high)),
        )
        for item in items
        for path in paths[item]
        if features[path] is not None
    ]
    no_face = sum(1 for value in features.values() if value is None)
    if len(samples) < 10:
        raise CommandError(f"Only {len(samples)} photo(s) with a face: too few to fit a regressor.")
    try:
        calibration = calibrate(
            samples,
            regressors=args.regressors or REGRESSOR_NAMES,
            trials=args.trials,
            holdout=args.holdout,
            seed=args.seed,
        )
    except RuntimeError as error:
        raise CommandError(str(error)) from error
    ceiling = None
    if "rater" in frame:
        used = frame[frame["item"].isin({sample.item for sample in samples})]
        half = split_half(ratings_frame(used[["item", "rater", "rating"]]), repeats=args.ceiling_repeats)
        ceiling = dataclasses.asdict(half)
    trained_on = args.trained_on or (
        f"mean ratings of {len({sample.item for sample in samples})} items from {Path(args.ratings).name}"
    )
    metrics = {
        "target": trained_on,
        "scale": {"ratings": [low, high], "rescaled_to": [1, 7]},
        "samples": len(samples),
        "items": len({sample.item for sample in samples}),
        "groups": len({sample.group for sample in samples}),
        "photos_without_face": no_face,
        "items_without_photo": unmatched,
        **calibration.metrics(),
        "split_half_ceiling": ceiling,
        "perceptual_metric": normalizer.metric,
        "normalizer": model_name,
        "normalizer_settings": settings,
        "folds_and_holdout": "split by group (item, or --group): never the same group in fit and test",
    }
    out = Path(args.out) if args.out else models.regressor_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(
        regressor_document(calibration, trained_on=trained_on, normalizer_settings=settings, metrics=metrics),
        out,
    )
    write_card(
        card_path(out),
        ModelCard(
            name=models.REGRESSOR_MODEL,
            task="normality",
            version=f"calibrated-{file_sha256(out)[:8]}",
            description="Rating regressor on Boyaci features, calibrated on human ratings "
            "(ml.normality.calibration).",
            data=f"{trained_on}; {len(samples)} photo(s) of {metrics['items']} item(s).",
            command="python -m ml " + " ".join(sys.argv[1:]),
            licence="Fitted on the ratings given: the licence of those photos and ratings applies.",
            limitations="Valid only with the normalizer settings it records; check its held-out figures "
            "before using its ratings.",
            metrics=metrics,
            weights=out.name,
            weights_sha256=file_sha256(out),
        ),
    )
    document = {"regressor": out.name, **metrics}
    if args.predictions and calibration.test_predictions:
        Path(args.predictions).write_text(json.dumps(calibration.test_predictions, indent=1) + "\n")
    print_json(document)
    return 0


def _chosen_regressor(reports: list[Any], max_mae: float | None) -> Any:
    """The lowest CV MAE or, with ``max_mae``, the highest CV Pearson R among those within it."""
    if max_mae is None:
        return min(reports, key=lambda report: report.mae)
    eligible = [report for report in reports if report.mae <= max_mae]
    if not eligible:
        raise CommandError(
            f"No regressor reached a CV MAE of {max_mae} or less (best {min(r.mae for r in reports):.3f})."
        )
    return max(eligible, key=lambda report: report.pearson_r)


def _fit_regressor_on_features(args: argparse.Namespace) -> int:
    import joblib

    from ml.normality import models
    from ml.normality.features import FEATURE_NAMES
    from ml.normality.regression import (
        REGRESSOR_NAMES,
        make_regressor,
        read_ratings,
        rescale_to_normality_scale,
        split_half_ceiling,
        tune_and_evaluate,
    )

    with Path(args.features).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise CommandError(f"{args.features} holds no rows.")
    missing = [name for name in (*FEATURE_NAMES, "attractiveness_1_10") if name not in rows[0]]
    if missing:
        raise CommandError(f"{args.features} lacks the column(s) {', '.join(missing)}.")
    features = np.array([[float(row[name]) for name in FEATURE_NAMES] for row in rows])
    targets = rescale_to_normality_scale(np.array([float(row["attractiveness_1_10"]) for row in rows]))
    settings = _normalizer_settings(rows, args.candidates)
    names = args.regressors or list(REGRESSOR_NAMES)
    try:
        reports = [
            tune_and_evaluate(name, features, targets, trials=args.trials, seed=args.seed) for name in names
        ]
    except RuntimeError as error:
        raise CommandError(str(error)) from error
    best = _chosen_regressor(reports, args.max_mae)
    ceiling_path = data_dir() / "mebeauty" / "ratings.csv"
    ceiling = (
        dataclasses.asdict(split_half_ceiling(read_ratings(ceiling_path))) if ceiling_path.is_file() else None
    )
    pipeline = make_regressor(best.name, best.params, args.seed).fit(features, targets)
    trained_on = "MEBeauty mean attractiveness ratings (1-10) rescaled to 1-7; not normality ratings"
    metrics = {
        "target": trained_on,
        "faces": len(rows),
        "cross_validation": [dataclasses.asdict(report) for report in reports],
        "chosen": best.name,
        "chosen_by": "lowest CV MAE"
        if args.max_mae is None
        else f"highest CV Pearson R with CV MAE <= {args.max_mae}",
        "inter_rater_ceiling": ceiling,
        "perceptual_metric": rows[0].get("perceptual_metric"),
        "normalizer_settings": settings,
    }
    out = Path(args.out) if args.out else models.regressor_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(
        {
            "pipeline": pipeline,
            "name": best.name,
            "params": best.params,
            "trained_on": trained_on,
            "candidates": settings["candidates"],
            "normalizer_settings": settings,
            "feature_names": list(FEATURE_NAMES),
        },
        out,
    )
    write_card(
        card_path(out),
        ModelCard(
            name=models.REGRESSOR_MODEL,
            task="normality",
            version=f"{best.name}-{file_sha256(out)[:8]}",
            description=f"Rating regressor ({best.name}) on Boyaci features, chosen by cross-validation.",
            data=f"{trained_on}; {len(rows)} faces ({Path(args.features).name}).",
            command="python -m ml " + " ".join(sys.argv[1:]),
            licence="Fitted on MEBeauty ratings: non-commercial research only.",
            limitations="Fitted on attractiveness ratings rescaled to 1-7, not on normality ratings: "
            "read the rating as indicative only.",
            metrics=metrics,
            weights=out.name,
            weights_sha256=file_sha256(out),
        ),
    )
    print_json({"regressor": out.name, **metrics})
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ml.normality.autoencoder import training_image_paths
    from ml.normality.evaluation import evaluate_defects

    data = Path(args.data) if args.data else data_dir()
    _, held_out = training_image_paths(data)
    normalizer, model_name = _load_normalizer(args.model, args.steps, args.adapt_steps)
    cache = _face_cache(args, normalizer.decoder.size)
    faces = []
    for path in held_out[args.skip :]:
        if len(faces) == args.limit:
            break
        face = _aligned_face(path, normalizer.decoder.size, cache)
        if face is not None:
            faces.append(face[:2])
    if not faces:
        raise CommandError("No held-out face was found (MEBeauty val split).")
    started = time.perf_counter()
    result = evaluate_defects(faces, normalizer.normalized_image, region=args.region)
    seconds_per_image = (time.perf_counter() - started) / (2 * len(faces))
    print_json(
        {
            "model": model_name,
            "data": "MEBeauty val split (held out), simulated upper-lip notch: SEMI-SYNTHETIC",
            "perceptual": normalizer.metric,
            "region": args.region,
            "projection_steps": normalizer.config.steps,
            "adapt_steps": normalizer.adapt_steps,
            **dataclasses.asdict(result),
            "seconds_per_normalized_image": round(seconds_per_image, 2),
        }
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``normality`` and its subcommands to the ``python -m ml`` parser."""
    normality = subparsers.add_parser("normality", help="Personalized facial normality (score, training).")
    actions = normality.add_subparsers(dest="normality_command", required=True, metavar="ACTION")

    def normalizer_options(
        parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("autoencoder", "stylegan2")
    ) -> None:
        parser.add_argument(
            "--model",
            choices=choices,
            default="autoencoder",
            help="Normalizer: the embedded autoencoder (default) or operator-provided StyleGAN2.",
        )
        parser.add_argument(
            "--steps",
            type=int,
            help="Projection iterations (default 100 autoencoder, 500 StyleGAN2; score: the rating "
            "regressor's extraction setting when it has one).",
        )
        parser.add_argument(
            "--adapt-steps",
            type=int,
            help="Generator adaptation iterations (50; score: the rating regressor's extraction setting).",
        )

    def features_fit_pixels_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--fit-pixels",
            choices=FIT_PIXELS,
            help="Aligned-crop pixels the candidates are fitted on and the features compare (default: the "
            "normalizer's, as the normality job uses; the regressor records them).",
        )

    def adapt_steps_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--adapt-steps",
            type=int,
            help=f"Generator adaptation iterations of the autoencoder (default {DEFAULT_ADAPT_STEPS}).",
        )

    def residual_map_option(
        parser: argparse.ArgumentParser,
        help_text: str = "Residual map whose figures are the report's main ones (both are reported): "
        "standardized against normal faces, or Hayajneh's raw PSE map.",
    ) -> None:
        parser.add_argument(
            "--residual-map", choices=RESIDUAL_MAPS, default=DEFAULT_RESIDUAL_MAP, help=help_text
        )

    def observed_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--fit-pixels",
            choices=FIT_PIXELS,
            help="Aligned-crop pixels the normalizer fits and S uses: all (padding included), observed "
            "(the photo's own, not the padding the alignment invents where the face fills the photo), "
            "observed-face (the photo's own inside the face outline) or observed-core (the photo's own "
            "inside the brows-to-mouth hull, no jaw line). Default: the normalizer's "
            f"(autoencoder {default_fit_pixels(NORMALITY_AUTOENCODER)}, others all).",
        )
        parser.add_argument(
            "--region-fit-weight",
            type=float,
            default=1.0,
            help="Weight of the scoring region's pixels in the latent normalizer's fit (1: like the rest; "
            "0: the region is left to the normal-face prior, Hayajneh et al. 2025). Default 1.",
        )
        parser.add_argument(
            "--symmetry-weight",
            type=float,
            default=0.0,
            help="Weight of the face's own mirror image in the target the normal face is fitted to "
            "(0: the face as photographed; 1: only its mirror). Default 0; tried and not adopted "
            "(docs/reports/normality-real-faces.md section 14).",
        )
        parser.add_argument(
            "--mirror-average",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="Average the latent normalizer's normal face with the one fitted to the face's mirror "
            f"image (default {'on' if DEFAULT_MIRROR_AVERAGE else 'off'}; report section 22).",
        )
        parser.add_argument(
            "--geometry-limit",
            type=float,
            help="Bring the normal face's nose-mouth landmarks within this many standard deviations of "
            "their normal positions predicted from the rest of the face (--geometry); default: no "
            "geometry correction (report section 25).",
        )
        parser.add_argument(
            "--geometry", help="Normal-geometry file written by fit-geometry (needed with --geometry-limit)."
        )

    score = actions.add_parser("score", help="Normality score of one face photo.")
    score.add_argument("image", help="Photo with one face (the largest face is scored).")
    score.add_argument("--json", action="store_true", help="Print a JSON document.")
    score.add_argument("--region", choices=REGIONS, default="mouth_nose")
    score.add_argument(
        "--metric", choices=HEATMAP_METRICS, default="pse", help="Heatmap: pse (paper), lpips, ssim."
    )
    score.add_argument("--heatmap", help="Write the heatmap overlay (aligned face) to this PNG.")
    score.add_argument("--normalized", help="Write the normalized face to this PNG.")
    score.add_argument("--no-rating", action="store_true", help="Score only; no 1-7 rating regressor needed.")
    score.add_argument(
        "--regressor", help="Rating regressor file from fit-regressor (default: the shipped one)."
    )
    score.add_argument("--weights", help="Another normalizer weights file than the shipped one.")
    normalizer_options(score, tuple(NORMALIZERS))
    residual_map_option(score, "Heatmap and S: Hayajneh's raw PSE map (default) or standardized.")
    observed_option(score)
    score.set_defaults(handler=_score)

    ceiling = actions.add_parser(
        "ceiling", help="Split-half inter-rater ceiling of a ratings CSV (MEBeauty)."
    )
    ceiling.add_argument("--ratings", help="image,rater,rating CSV (default <data>/mebeauty/ratings.csv).")
    ceiling.add_argument("--repeats", type=int, default=100)
    ceiling.add_argument("--seed", type=int, default=0)
    ceiling.add_argument("--json", action="store_true")
    ceiling.set_defaults(handler=_ceiling)

    train = actions.add_parser("train-normalizer", help="Train the embedded autoencoder normalizer.")
    train.add_argument(
        "--data", help="Data directory holding mebeauty/ and fasseg/ (default FACET_DATA_DIR)."
    )
    train.add_argument("--out", help="Weights file (default <weights>/normality/autoencoder-128.pt).")
    train.add_argument("--size", type=int, default=128)
    train.add_argument("--steps", type=int, default=2000)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--learning-rate", type=float, default=2e-3)
    train.add_argument("--max-images", type=int, help="Use only this many training photos (smoke tests).")
    train.add_argument("--threads", type=int, help="torch CPU threads.")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--max-minutes", type=float, help="Wall-clock budget for the optimisation (alignment not included)."
    )
    train.add_argument(
        "--cache-dir", help="Keep the aligned faces here (.npz) and reuse them on the next run."
    )
    train.add_argument(
        "--init-weights", help="Continue training these autoencoder weights instead of starting afresh."
    )
    train.add_argument(
        "--add-300w",
        action="store_true",
        help="Also train on the landmarks300w faces (all ages), aligned with their human landmarks.",
    )
    train.add_argument(
        "--exclude-age-similar",
        help="Age-similar listing (as validate --age-similar) whose faces stay out of training, so that "
        "comparison stays out-of-sample.",
    )
    train.set_defaults(handler=_train_normalizer)

    inpaint = actions.add_parser(
        "train-inpainter", help="Train (or resume) the inpainting normalizer, with checkpoints."
    )
    inpaint.add_argument("--data", help="Data directory (mebeauty/, fasseg/, landmarks300w/).")
    inpaint.add_argument("--out", help="Weights file (default <weights>/normality/inpainting-128.pt).")
    inpaint.add_argument("--checkpoint", required=True, help="Training state file; resumed when present.")
    inpaint.add_argument(
        "--init",
        help="Start a new run from these saved weights (e.g. the shipped inpainting-128.pt: fp16 loaded as "
        "fp32, fresh optimizer, step 0) instead of a random network; ignored when --checkpoint exists, "
        "so the same command resumes after a stop.",
    )
    inpaint.add_argument(
        "--warmup-steps", type=int, default=0, help="Linear learning-rate warm-up steps (0; use with --init)."
    )
    inpaint.add_argument(
        "--score-time-holes",
        type=float,
        default=0.0,
        help="Share of training holes drawn exactly as at score time (candidate margins, no shift) (0).",
    )
    inpaint.add_argument("--cache-dir", required=True, help="Aligned faces are kept here (.npz).")
    inpaint.add_argument("--size", type=int, default=128)
    inpaint.add_argument("--batch-size", type=int, default=16)
    inpaint.add_argument("--learning-rate", type=float, default=1e-3)
    inpaint.add_argument(
        "--max-minutes", type=float, required=True, help="Training time budget, summed over restarts."
    )
    inpaint.add_argument("--checkpoint-minutes", type=float, default=4.0)
    inpaint.add_argument("--threads", type=int, default=1, help="torch CPU threads (1).")
    inpaint.add_argument("--seed", type=int, default=0)
    inpaint.set_defaults(handler=_train_inpainter)

    extract = actions.add_parser(
        "extract-features", help="Boyaci features of MEBeauty faces for the regressors."
    )
    extract.add_argument("--data", help="Data directory holding mebeauty/ (default FACET_DATA_DIR).")
    extract.add_argument("--out", required=True, help="CSV to write.")
    extract.add_argument("--limit", type=int, help="Only the first N faces.")
    extract.add_argument("--candidates", type=int, default=5, help="K normalized candidates averaged (5).")
    extract.add_argument(
        "--split",
        choices=("all", "train", "val"),
        default="all",
        help="MEBeauty split; 'val' faces were never seen by the embedded normalizer (all).",
    )
    extract.add_argument("--sample", type=int, help="A random subset of N faces (seeded by --seed).")
    extract.add_argument("--seed", type=int, default=0)
    extract.add_argument("--skip", type=int, default=0, help="Skip the first N chosen faces (to split work).")
    extract.add_argument("--cache-dir", help="Aligned-face caches written by train-normalizer --cache-dir.")
    extract.add_argument(
        "--weights",
        help="Another normalizer weights file than the shipped one (e.g. the rating's, "
        "autoencoder-128-rating.pt); the regressor records which.",
    )
    features_fit_pixels_option(extract)
    normalizer_options(extract)
    extract.set_defaults(handler=_extract_features)

    evaluate = actions.add_parser("evaluate", help="Simulated lip-notch test on held-out MEBeauty faces.")
    evaluate.add_argument("--data", help="Data directory holding mebeauty/ (default FACET_DATA_DIR).")
    evaluate.add_argument("--limit", type=int, default=100, help="Held-out faces to use (100).")
    evaluate.add_argument(
        "--skip", type=int, default=0, help="Skip the first N held-out photos (to split work)."
    )
    evaluate.add_argument("--region", choices=REGIONS, default="mouth_nose")
    evaluate.add_argument("--cache-dir", help="Aligned-face caches written by train-normalizer --cache-dir.")
    normalizer_options(evaluate)
    evaluate.set_defaults(handler=_evaluate)

    validate = actions.add_parser(
        "validate", help="Validity tests: real cleft pairs, simulated defects, clefts vs normal faces."
    )
    validate.add_argument("--data", help="Data directory (cleft-pairs/, london/, mebeauty/).")
    adapt_steps_option(validate)
    validate.add_argument(
        "--model",
        choices=tuple(NORMALIZERS),
        default="autoencoder",
        help="Normalizer (default: the autoencoder, the analysis' default).",
    )
    validate.add_argument("--weights", help="Another normalizer weights file than the shipped one.")
    validate.add_argument("--normal-limit", type=int, default=51, help="London normal faces to score (51).")
    validate.add_argument(
        "--age-similar",
        help="JSON naming normal faces of the cleft photos' age (children) and a same-source sample "
        "(docs/reports/normality-age-similar-faces.json): adds the cleft-vs-children comparison.",
    )
    validate.add_argument(
        "--defect-limit", type=int, default=100, help="Held-out faces for defects (0: skip)."
    )
    validate.add_argument("--defect-skip", type=int, default=0, help="Skip the first N held-out faces.")
    validate.add_argument("--cache-dir", help="Aligned-face caches written by train-inpainter --cache-dir.")
    validate.add_argument("--out", help="Write the JSON report here too.")
    residual_map_option(validate)
    observed_option(validate)
    validate.set_defaults(handler=_validate)

    framing = actions.add_parser(
        "framing", help="Framing invariance of S and its noise floor (London photos)."
    )
    framing.add_argument("--data", help="Data directory (london/, mebeauty/).")
    adapt_steps_option(framing)
    framing.add_argument(
        "--model",
        choices=tuple(NORMALIZERS),
        default="autoencoder",
        help="Normalizer (default: the autoencoder, the analysis' default).",
    )
    framing.add_argument("--weights", help="Another normalizer weights file than the shipped one.")
    framing.add_argument("--limit", type=int, default=10, help="London faces (10).")
    framing.add_argument("--skip", type=int, default=0)
    framing.add_argument("--crop-limit", type=int, default=20, help="MEBeauty crop/original pairs (20).")
    framing.add_argument("--crop-skip", type=int, default=0, help="Skip the first N MEBeauty pairs.")
    framing.add_argument(
        "--crop-split",
        choices=("val", "train"),
        default="val",
        help="MEBeauty split of the pairs (val; the train crops trained the autoencoder).",
    )
    framing.add_argument(
        "--crop-sample-seed",
        type=int,
        help="Take a seeded random sample of --crop-limit pairs instead of the first ones.",
    )
    framing.add_argument(
        "--london-expression",
        choices=("neutral", "smiling"),
        default="neutral",
        help="Which London photos are re-framed (neutral).",
    )
    framing.add_argument("--out", help="Write the JSON report (with per-face scores) here.")
    residual_map_option(framing)
    observed_option(framing)
    framing.set_defaults(handler=_framing)

    fit_geometry = actions.add_parser(
        "fit-geometry",
        help="Normal nose-mouth geometry given the rest of the face, from the training faces.",
    )
    fit_geometry.add_argument("--data", help="Data directory (mebeauty/, fasseg/).")
    fit_geometry.add_argument(
        "--size", type=int, default=128, help="Aligned crop size (128, the autoencoder's)."
    )
    fit_geometry.add_argument("--cache-dir", help="Aligned-face caches (train-SIZE.npz), reused or written.")
    fit_geometry.add_argument("--out", required=True, help="Normal-geometry JSON file to write.")
    fit_geometry.set_defaults(handler=_fit_geometry)

    fit_reference = actions.add_parser(
        "fit-residual-reference",
        help="Residual statistics of normal training faces for the standardized heatmap.",
    )
    fit_reference.add_argument("--data", help="Data directory (mebeauty/, fasseg/).")
    fit_reference.add_argument("--model", choices=("autoencoder", "inpainting"), default="autoencoder")
    fit_reference.add_argument("--weights", help="Another normalizer weights file than the shipped one.")
    fit_reference.add_argument("--limit", type=int, default=150, help="Training faces sampled (150).")
    fit_reference.add_argument("--seed", type=int, default=0)
    fit_reference.add_argument("--cache-dir", help="Keep the aligned sample here (.npz).")
    fit_reference.add_argument("--threads", type=int, default=1, help="torch CPU threads (1).")
    fit_reference.add_argument(
        "--fit-pixels",
        choices=FIT_PIXELS,
        help="Aligned-crop pixels each face is fitted and compared on, as in the analyses the reference "
        f"serves (default: the normalizer's: autoencoder {default_fit_pixels(NORMALITY_AUTOENCODER)}; "
        "inpainting all).",
    )
    fit_reference.set_defaults(handler=_fit_residual_reference)

    reference = actions.add_parser(
        "write-reference", help="Put the reference range of S and the noise floor into the model card."
    )
    reference.add_argument("--validate", required=True, help="JSON written by validate --out.")
    reference.add_argument("--framing", required=True, help="JSON written by framing --out.")
    reference.add_argument("--weights", help="Normalizer weights whose card is updated (the shipped one).")
    reference.add_argument(
        "--measures-floor",
        help="Also write S's noise floor for the measures' pre-post comparisons to this JSON file "
        "(ml/measures/noise_floor_normality.json for the worker's default normalizer).",
    )
    residual_map_option(reference, "Which residual map's range and floor to write (the analysis default).")
    reference.set_defaults(handler=_write_reference)

    fit = actions.add_parser(
        "fit-regressor", help="TPE-tune and cross-validate the regressors; save the best."
    )
    fit.add_argument("--features", help="CSV from extract-features (MEBeauty attractiveness).")
    fit.add_argument(
        "--images", nargs="+", help="Folder(s) of the rated photos: item X is FOLDER/X.jpg (or .png)."
    )
    fit.add_argument("--ratings", help="Long ratings CSV: one row per item and rating (and rater).")
    features_fit_pixels_option(fit)
    fit.add_argument("--item", default="item", help="Column of the ratings CSV naming the item (item).")
    fit.add_argument("--rating", default="rating", help="Column holding the rating (rating).")
    fit.add_argument("--rater", help="Column naming the rater: adds the split-half ceiling.")
    fit.add_argument(
        "--group",
        help="Column naming the person of an item: folds and test part never split a person "
        "(default: each item is its own person).",
    )
    fit.add_argument(
        "--scale",
        nargs=2,
        type=float,
        default=(1.0, 7.0),
        metavar=("MIN", "MAX"),
        help="The ratings' scale, mapped linearly onto 1-7 (1 7).",
    )
    fit.add_argument(
        "--holdout",
        type=float,
        default=0.0,
        help="Share of persons held out as a test part, reported as test R/MAE (0: none).",
    )
    fit.add_argument("--limit", type=int, help="Only the first N rated items (to measure a small run).")
    fit.add_argument("--cache-dir", help="Feature cache folder (default var/cache/normality-features).")
    fit.add_argument("--trained-on", help="What the ratings are, stored with the regressor.")
    fit.add_argument("--ceiling-repeats", type=int, default=100, help="Random rater splits (100).")
    fit.add_argument("--predictions", help="Write the held-out items' predictions to this JSON file.")
    normalizer_options(fit)
    fit.add_argument("--regressors", nargs="+", help="Subset of mlp linear huber svr ridge lasso.")
    fit.add_argument("--trials", type=int, default=30, help="TPE trials per regressor.")
    fit.add_argument(
        "--max-mae",
        type=float,
        help="With --features: choose the highest CV Pearson R among the regressors with CV MAE at most "
        "this (the bar names R: report section 21.2); default: the lowest CV MAE.",
    )
    fit.add_argument(
        "--candidates", type=int, default=5, help="K of the features when their CSV does not say (5)."
    )
    fit.add_argument("--out", help="Regressor file (default <weights>/normality/rating-regressor.joblib).")
    fit.add_argument("--seed", type=int, default=0)
    fit.set_defaults(handler=_fit_regressor)
