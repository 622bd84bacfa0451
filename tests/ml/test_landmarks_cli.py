"""``python -m ml landmarks detect`` and ``python -m ml models list`` as a user runs them."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ml.cli import main
from ml.config import repo_root


def _run(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ml", *arguments], cwd=repo_root(), capture_output=True, text=True, timeout=120
    )


@pytest.mark.data
def test_detect_prints_the_documented_json(face_photo_path: Path):
    completed = _run("landmarks", "detect", str(face_photo_path), "--json", "--view", "frontal")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert set(result) == {"faces", "subject", "quality", "model", "image"}
    assert result["model"]["name"] == "dlib-68" and result["subject"] == 0
    assert len(result["model"]["weights_sha256"]) == 64 and "/" not in result["model"]["weights"]
    assert result["model"]["version"].startswith("dlib-")
    assert result["image"]["width"] > 300 and result["image"]["height"] > 300
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    assert set(face) == {"box", "score", "detector", "landmarks", "pose"}
    assert len(face["box"]) == 4 and face["box"][0] < face["box"][2] and face["box"][1] < face["box"][3]
    assert face["detector"] == "yunet" and face["score"] >= 0.75
    assert len(face["landmarks"]) == 68 and all(len(point) == 2 for point in face["landmarks"])
    assert set(face["pose"]) == {"yaw", "pitch", "roll"} and abs(face["pose"]["yaw"]) < 15
    assert set(result["quality"]) == {"ok", "reasons", "measures"}
    assert result["quality"]["ok"] is True, result["quality"]["reasons"]


@pytest.mark.data
def test_profile_views_are_found_and_checked_by_direction(data_dir: Path):
    folder = data_dir / "fasseg" / "multipose" / "train" / "images"
    profiles = sorted(folder.glob("+90__*.jpg"))
    if not profiles:
        pytest.skip(f"no 90° FASSEG profiles in {folder}")
    # FASSEG's +90 shows the subject's left side: Facet's "left90" view (yaw −90).
    completed = _run("landmarks", "detect", str(profiles[0]), "--json", "--view", "left90")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert len(result["faces"]) == 1 and result["faces"][0]["pose"]["yaw"] < -50
    assert not any("view expects" in reason for reason in result["quality"]["reasons"])
    wrong = json.loads(_run("landmarks", "detect", str(profiles[0]), "--json", "--view", "right90").stdout)
    assert any("expects a profile" in reason for reason in wrong["quality"]["reasons"])


def test_unreadable_image_fails_with_a_clear_message(tmp_path: Path):
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("hello")
    completed = _run("landmarks", "detect", str(not_an_image), "--json")
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert "is not an image" in completed.stderr and "Traceback" not in completed.stderr
    missing = _run("landmarks", "detect", str(tmp_path / "missing.png"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_unknown_model_fails_with_the_known_names(tmp_path: Path, png_bytes, capsys):
    image = tmp_path / "grey.png"
    image.write_bytes(png_bytes())
    assert main(["landmarks", "detect", str(image), "--model", "nope"]) == 2
    error = capsys.readouterr().err
    assert "Unknown model 'nope'" in error and "dlib-68" in error


def test_models_list_shows_the_landmark_model(capsys):
    assert main(["models", "list", "--task", "landmarks", "--json"]) == 0
    described = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert described["dlib-68"]["task"] == "landmarks"
    assert "research" in described["dlib-68"]["licence"]
    assert len(described["dlib-68"]["weights_sha256"]) == 64
