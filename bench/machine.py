"""What machine and software a benchmark ran on, for the report."""

import datetime
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    return None


def _package_version(*names: str) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory, OS and the versions of the libraries that do the work."""
    import cv2
    import django

    from ml.config import code_version

    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        # torch is not imported by the landmark pipeline; its installed version is reported for context.
        "torch": _package_version("torch"),
        "dlib": _package_version("dlib-bin", "dlib"),
        "opencv": cv2.__version__,
        "pillow": _package_version("pillow"),
        "django": django.get_version(),
        "celery": _package_version("celery"),
        "code_version": code_version(),
    }


def run_header(report: dict[str, Any]) -> list[str]:
    """The report lines saying how the run was made: command, date, CPU, torch threads when set, and the
    load average before and after (other work on the machine shows there)."""
    machine = report["machine"]
    threads = f"torch threads {report['torch_threads']}; " if "torch_threads" in report else ""
    return [
        f"Command: `{report['command']}`  ",
        f"Date: {machine['date']}; CPU: {machine['cpu_model']}, {machine['cpus_available']} cores available; "
        f"{threads}load average before/after: {report['load_average_before']} / "
        f"{report['load_average_after']}.",
    ]
