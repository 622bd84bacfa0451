"""Pure-torch stand-ins for torchvision's compiled operators on a CPU-only torch.

The torchvision wheel on PyPI is built against CUDA torch; with the CPU torch its ``_C`` extension
does not load, and ``import torchvision`` then fails in ``_meta_registrations`` with
``operator torchvision::nms does not exist``. ``scripts/fix_torchvision.py`` installs this module
into the virtualenv together with a ``.pth`` line that imports it at interpreter start-up.

Start-up cost is one ``sys.meta_path`` entry: torch is not imported here. When
``torchvision.extension`` is imported and reports that its compiled ops are missing, the operator
schemas torchvision registers against at import time are defined with ``torch.library``, ``nms``
(and ``qnms``) get a pure-torch CPU kernel, ``roi_align`` runs torchvision's own Python
implementation, and every other operator raises a clear error when called. If the compiled ops do
load (a matching torchvision build), nothing is changed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

_TARGET_MODULE = "torchvision.extension"

# Schemas as torchvision 0.28 declares them in torchvision/csrc/ops/*.cpp; _meta_registrations.py and
# _autograd_registrations.py register kernels on each of them once _has_ops() is true.
_SCHEMAS: dict[str, str] = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "roi_align": (
        "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
        "SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor"
    ),
    "_roi_align_backward": (
        "_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, "
        "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width, "
        "int sampling_ratio, bool aligned) -> Tensor"
    ),
    "qroi_align": (
        "qroi_align(Tensor input, Tensor rois, float input_scale, int input_zero_point, float rois_scale, "
        "int rois_zero_point, float spatial_scale, SymInt pooled_height, SymInt pooled_width, "
        "int sampling_ratio, bool aligned) -> Tensor"
    ),
    "roi_pool": (
        "roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
        "SymInt pooled_width) -> (Tensor, Tensor)"
    ),
    "_roi_pool_backward": (
        "_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float spatial_scale, "
        "SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, "
        "SymInt width) -> Tensor"
    ),
    "ps_roi_align": (
        "ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
        "SymInt pooled_width, int sampling_ratio) -> (Tensor, Tensor)"
    ),
    "_ps_roi_align_backward": (
        "_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, "
        "SymInt pooled_height, SymInt pooled_width, int sampling_ratio, SymInt batch_size, "
        "SymInt channels, SymInt height, SymInt width) -> Tensor"
    ),
    "ps_roi_pool": (
        "ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
        "SymInt pooled_width) -> (Tensor, Tensor)"
    ),
    "_ps_roi_pool_backward": (
        "_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, "
        "SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, "
        "SymInt width) -> Tensor"
    ),
    "deform_conv2d": (
        "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, "
        "SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, "
        "SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) -> Tensor"
    ),
    "_deform_conv2d_backward": (
        "_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, Tensor mask, "
        "Tensor bias, SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, "
        "SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) "
        "-> (Tensor, Tensor, Tensor, Tensor, Tensor)"
    ),
    "box_iou_rotated": "box_iou_rotated(Tensor boxes1, Tensor boxes2) -> Tensor",
}
# torchvision/version.py asks the extension which CUDA it was built for; -1 means a CPU build.
_CUDA_VERSION_SCHEMA = "_cuda_version() -> int"

# Keeps the operator definitions alive: a torch.library.Library deregisters them when collected.
_libraries: list[Any] = []


def nms_reference(boxes: Any, scores: Any, iou_threshold: float) -> Any:
    """Greedy non-maximum suppression with the semantics of torchvision's CPU kernel.

    Boxes are ``(x1, y1, x2, y2)``; visits boxes by descending score (stable order for ties), keeps a
    box and drops every later box whose IoU with it exceeds ``iou_threshold``. Returns the kept
    indices (int64) in descending score order. Arithmetic stays in the boxes' dtype, as in
    torchvision/csrc/ops/cpu/nms_kernel.cpp.
    """
    import torch

    if boxes.dim() != 2 or boxes.size(1) != 4:
        raise ValueError(f"boxes should be a 2d tensor of shape (N, 4), got {tuple(boxes.shape)}")
    if scores.dim() != 1 or scores.size(0) != boxes.size(0):
        raise ValueError(
            f"scores should be a 1d tensor with one score per box, got {tuple(scores.shape)} "
            f"for {boxes.size(0)} boxes"
        )
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)

    order = torch.sort(scores, stable=True, descending=True).indices
    x1, y1, x2, y2 = boxes[order].unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    candidates = torch.arange(order.numel(), device=boxes.device)
    kept: list[Any] = []
    while candidates.numel() > 0:
        best, rest = candidates[0], candidates[1:]
        kept.append(best)
        inter_w = (torch.minimum(x2[best], x2[rest]) - torch.maximum(x1[best], x1[rest])).clamp(min=0)
        inter_h = (torch.minimum(y2[best], y2[rest]) - torch.maximum(y1[best], y1[rest])).clamp(min=0)
        inter = inter_w * inter_h
        iou = inter / (areas[best] + areas[rest] - inter)
        # `~(iou > t)` rather than `iou <= t`: a NaN IoU does not suppress, as in the C++ kernel.
        candidates = rest[~(iou > iou_threshold)]
    return order[torch.stack(kept)]


def _quantized_nms(dets: Any, scores: Any, iou_threshold: float) -> Any:
    # qnms receives int_repr() tensors; IoU is scale-invariant, so float arithmetic on them is exact enough.
    return nms_reference(dets.float(), scores.float(), iou_threshold)


def _roi_align_python(
    input: Any,
    rois: Any,
    spatial_scale: float,
    pooled_height: int,
    pooled_width: int,
    sampling_ratio: int,
    aligned: bool,
) -> Any:
    # torchvision ships an exact Python roi_align; it is imported lazily because ops loads after extension.
    from torchvision.ops.roi_align import _roi_align

    return _roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)


def _cpu_build_cuda_version() -> int:
    return -1


def _missing_kernel(op_name: str) -> Callable[..., Any]:
    def kernel(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            f"torchvision::{op_name} is not available: torchvision's compiled ops do not load with this "
            "CPU-only torch, and facet_torchvision_cpu_ops only provides nms, batched_nms and roi_align. "
            "Install a torchvision build that matches torch (e.g. from the PyTorch CPU index) to use it."
        )

    return kernel


def define_torchvision_ops() -> None:
    """Define every ``torchvision::`` operator schema and register the CPU kernels described above."""
    import torch

    library = torch.library.Library("torchvision", "DEF")
    implemented: dict[str, Callable[..., Any]] = {
        "nms": nms_reference,
        "qnms": _quantized_nms,
        "roi_align": _roi_align_python,
    }
    for op_name, schema in _SCHEMAS.items():
        library.define(schema)
        library.impl(op_name, implemented.get(op_name) or _missing_kernel(op_name), "CPU")
    library.define(_CUDA_VERSION_SCHEMA)
    # An operator without tensor arguments dispatches to CompositeExplicitAutograd, not CPU.
    library.impl("_cuda_version", _cpu_build_cuda_version, "CompositeExplicitAutograd")
    _libraries.append(library)


def _patch_extension(extension: ModuleType) -> None:
    if extension._has_ops():
        return
    define_torchvision_ops()
    extension._has_ops = _ops_available


def _ops_available() -> bool:
    return True


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, wrapped: importlib.abc.Loader) -> None:
        self._wrapped = wrapped

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._wrapped.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._wrapped.exec_module(module)
        _patch_extension(module)


class _ExtensionFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(spec.loader)
        return spec


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once) so it sees ``torchvision.extension`` load."""
    if not any(isinstance(finder, _ExtensionFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ExtensionFinder())


install()
