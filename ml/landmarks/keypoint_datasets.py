"""Immutable, versioned 68-point keypoint datasets: ``<root>/v0``, ``<root>/v1``, …

Each version folder is created once and holds ``dataset.json`` (the full :class:`KeypointDataset`) and
``manifest.json`` (version, parent, note, counts, SHA-256 of ``dataset.json``). Writing a version that
exists is refused; reading checks the hash, so an edited version is detected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.landmarks.formats import KeypointDataset

DATASET_FILE = "dataset.json"
MANIFEST_FILE = "manifest.json"


class VersionExistsError(FileExistsError):
    """A dataset version is written once; this one already exists."""


class CorruptVersionError(ValueError):
    """A version's content no longer matches the hash in its manifest."""


@dataclass(frozen=True)
class DatasetVersion:
    """A written version: its number, folder and manifest."""

    number: int
    path: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return f"v{self.number}"


def _canonical_bytes(dataset: KeypointDataset) -> bytes:
    return json.dumps(dataset.as_dict(), sort_keys=True, separators=(",", ":")).encode()


class DatasetStore:
    """The versions of one dataset under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def versions(self) -> list[int]:
        """Numbers of the written versions (those with a manifest), ascending."""
        if not self.root.is_dir():
            return []
        numbers = []
        for child in self.root.iterdir():
            match = re.fullmatch(r"v(\d+)", child.name)
            if match and (child / MANIFEST_FILE).is_file():
                numbers.append(int(match.group(1)))
        return sorted(numbers)

    def next_version(self) -> int:
        written = self.versions()
        return written[-1] + 1 if written else 0

    def write(
        self,
        dataset: KeypointDataset,
        number: int | None = None,
        parent: int | None = None,
        note: str = "",
        extra: dict[str, Any] | None = None,
    ) -> DatasetVersion:
        """Write ``dataset`` as version ``number`` (default: the next one); refuses an existing version."""
        number = self.next_version() if number is None else number
        if number < 0:
            raise ValueError(f"Version numbers are ≥ 0, got {number}.")
        folder = self.root / f"v{number}"
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()  # atomic: of two writers of the same version only one succeeds
        except FileExistsError as error:
            raise VersionExistsError(
                f"Dataset version v{number} already exists at {folder}; versions are immutable."
            ) from error
        content = _canonical_bytes(dataset)
        manifest = {
            "version": number,
            "name": f"v{number}",
            "parent": parent,
            "note": note,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "counts": dataset.counts(),
            "sha256": hashlib.sha256(content).hexdigest(),
            **(extra or {}),
        }
        (folder / DATASET_FILE).write_bytes(content)
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        for written in (folder / DATASET_FILE, folder / MANIFEST_FILE):
            written.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        return DatasetVersion(number, folder, manifest)

    def manifest(self, number: int) -> dict[str, Any]:
        path = self.root / f"v{number}" / MANIFEST_FILE
        if not path.is_file():
            raise FileNotFoundError(f"Dataset version v{number} does not exist under {self.root}.")
        return json.loads(path.read_text())

    def read(self, number: int) -> KeypointDataset:
        """The dataset of version ``number``, after checking its content hash."""
        manifest = self.manifest(number)
        content = (self.root / f"v{number}" / DATASET_FILE).read_bytes()
        if hashlib.sha256(content).hexdigest() != manifest["sha256"]:
            raise CorruptVersionError(
                f"Dataset version v{number} under {self.root} was modified after writing."
            )
        return KeypointDataset.from_dict(json.loads(content))

    def latest(self) -> DatasetVersion | None:
        written = self.versions()
        if not written:
            return None
        number = written[-1]
        return DatasetVersion(number, self.root / f"v{number}", self.manifest(number))
