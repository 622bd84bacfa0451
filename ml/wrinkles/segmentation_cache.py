"""Segmentation outputs of a ``wrinkle-boxes`` folder computed once and kept on disk, so that rules
fitted on top of them (the landmark-geometry wrinkle types) never re-run the network.

One compressed ``NAME.npz`` per photo under the cache folder: the subject's 68 ``landmarks``, the
analysed skin (``whole``) and the wrinkle ``mask`` in it, exactly as the analysis reports them
(:func:`ml.wrinkles.analysis.analysed_wrinkles`: the model's threshold and post-processing); a photo
without a face gets an npz with ``no_face`` set. ``cache.json`` records
the model (name, version, weights SHA-256): a cache of other weights is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.wrinkles.boxes import BoxPhoto, read_photos


@dataclass(frozen=True)
class CachedSegmentation:
    """One photo's cached segmentation (``landmarks`` is ``None`` when no face was found)."""

    photo: BoxPhoto
    shape: tuple[int, int]
    landmarks: np.ndarray | None
    whole: np.ndarray | None
    mask: np.ndarray | None


def _model_identity() -> dict[str, str]:
    from ml.registry import registry
    from ml.wrinkles.models import DEFAULT_WRINKLE_MODEL

    description = registry.describe(DEFAULT_WRINKLE_MODEL)
    return {key: str(description.get(key)) for key in ("name", "version", "weights_sha256")}


def build_cache(
    data_dir: Path,
    cache_dir: Path,
    splits: tuple[str, ...],
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> int:
    """Segment every photo of ``splits`` (the first ``limit`` of each) with the shipped wrinkle model and
    store it under ``cache_dir``; photos already cached are skipped. Returns the photos segmented."""
    from ml.core.imageio import load_image
    from ml.core.subject import NoFaceError
    from ml.wrinkles.analysis import analysed_wrinkles, resolve_wrinkle_model, segment_wrinkles
    from ml.wrinkles.models import DEFAULT_WRINKLE_MODEL
    from ml.wrinkles.realphoto import subject_landmarks_of

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    identity = _model_identity()
    manifest = cache_dir / "cache.json"
    if manifest.is_file() and json.loads(manifest.read_text())["model"] != identity:
        raise ValueError(f"{cache_dir} holds segmentations of other weights; use another folder.")
    manifest.write_text(json.dumps({"model": identity, "data": str(data_dir)}, indent=2))
    network, metadata, _ = resolve_wrinkle_model(DEFAULT_WRINKLE_MODEL, None, None)
    done = 0
    started = time.monotonic()
    for split in splits:
        photos = read_photos(data_dir, split)
        for photo in photos[:limit] if limit else photos:
            path = cache_dir / f"{photo.name}.npz"
            if path.is_file():
                continue
            image = load_image(photo.image_path)
            try:
                landmarks = subject_landmarks_of(image)
            except NoFaceError:
                np.savez_compressed(path, no_face=True, shape=np.array(image.shape[:2]))
                continue
            segmentation = segment_wrinkles(image, landmarks, network, metadata)
            analysed = analysed_wrinkles(segmentation, landmarks, image.shape, metadata)
            np.savez_compressed(
                path,
                no_face=False,
                shape=np.array(image.shape[:2]),
                landmarks=landmarks.astype(np.float32),
                whole=np.packbits(analysed.photo_whole()),
                mask=np.packbits(analysed.photo_mask),
            )
            done += 1
            if done % 25 == 0:
                log(f"{split}: {done} photos segmented, {time.monotonic() - started:.0f} s")
    return done


def read_cache(data_dir: Path, cache_dir: Path, split: str) -> Iterator[CachedSegmentation]:
    """The cached segmentations of the photos of ``split`` (photos not cached are skipped)."""
    for photo in read_photos(data_dir, split):
        path = Path(cache_dir) / f"{photo.name}.npz"
        if not path.is_file():
            continue
        with np.load(path) as stored:
            shape = (int(stored["shape"][0]), int(stored["shape"][1]))
            if bool(stored["no_face"]):
                yield CachedSegmentation(photo, shape, None, None, None)
                continue
            pixels = shape[0] * shape[1]
            yield CachedSegmentation(
                photo,
                shape,
                stored["landmarks"].astype(np.float64),
                np.unpackbits(stored["whole"])[:pixels].reshape(shape).astype(bool),
                np.unpackbits(stored["mask"])[:pixels].reshape(shape).astype(bool),
            )
