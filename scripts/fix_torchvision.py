"""Make ``import torchvision`` work on a CPU-only torch, only where it fails.

Run it with the interpreter of the environment to fix (``.venv/bin/python scripts/fix_torchvision.py``).
If torchvision imports as is, nothing is installed. Otherwise ``facet_torchvision_cpu_ops.py`` and a
``.pth`` line importing it are copied into that environment's site-packages, and the import and
``torchvision.ops.nms`` are checked again in a fresh interpreter. Running it again is safe: an
installed hook is refreshed if this checkout has a newer copy, then re-checked.
Exit status 0 means torchvision imports and nms gives the expected result.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

HOOK_MODULE = "facet_torchvision_cpu_ops"
HOOK_SOURCE = Path(__file__).with_name(f"{HOOK_MODULE}.py")
PTH_LINE = f"import {HOOK_MODULE}\n"

# Three boxes: the second overlaps the first (IoU 0.81) and must be suppressed at threshold 0.5.
_CHECK = """
import torch, torchvision
from torchvision.ops import nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
scores = torch.tensor([0.9, 0.8, 0.7])
kept = nms(boxes, scores, 0.5).tolist()
assert kept == [0, 2], f"torchvision.ops.nms returned {kept}, expected [0, 2]"
print(f"torchvision {torchvision.__version__} imports with torch {torch.__version__}; nms ok")
"""


def site_packages() -> Path:
    """Return the purelib site-packages directory of the running interpreter."""
    return Path(sysconfig.get_paths()["purelib"])


def torchvision_works() -> tuple[bool, str]:
    """Import torchvision and run nms in a fresh interpreter; return (ok, its output)."""
    result = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True, check=False)
    output = (result.stdout + result.stderr).strip()
    return result.returncode == 0, output


def install_hook(target: Path) -> None:
    """Copy the hook module and its ``.pth`` loader into ``target`` (a site-packages directory)."""
    shutil.copyfile(HOOK_SOURCE, target / f"{HOOK_MODULE}.py")
    (target / f"{HOOK_MODULE}.pth").write_text(PTH_LINE)


def hook_is_current(target: Path) -> bool:
    """True when ``target`` already holds this checkout's hook module and ``.pth`` line."""
    module, pth = target / f"{HOOK_MODULE}.py", target / f"{HOOK_MODULE}.pth"
    return (
        module.is_file()
        and pth.is_file()
        and module.read_bytes() == HOOK_SOURCE.read_bytes()
        and pth.read_text() == PTH_LINE
    )


def main() -> int:
    target = site_packages()
    hook_present = (target / f"{HOOK_MODULE}.pth").exists()

    if not hook_present:
        ok, output = torchvision_works()
        if ok:
            print(f"fix_torchvision: not needed ({output.splitlines()[-1]})")
            return 0
        print(
            f"fix_torchvision: `import torchvision` fails here; installing the CPU ops hook into {target}",
            flush=True,
        )
        install_hook(target)
    elif not hook_is_current(target):
        print(f"fix_torchvision: refreshing the CPU ops hook in {target}", flush=True)
        install_hook(target)

    ok, output = torchvision_works()
    if not ok:
        print(
            f"fix_torchvision: torchvision still fails after installing the hook:\n{output}", file=sys.stderr
        )
        return 1
    print(f"fix_torchvision: {output.splitlines()[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
