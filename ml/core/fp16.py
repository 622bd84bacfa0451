"""Weights files stored in fp16: floating-point tensors halved on save and restored to float32 on load;
integer buffers (batch counts) stay as they are. One rule for every pipeline's saved networks."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def half_state(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` (a state dict) with its floating-point tensors in fp16."""
    return {key: value.half() if value.is_floating_point() else value for key, value in state.items()}


def float_state(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with its floating-point tensors back in float32."""
    return {key: value.float() if value.is_floating_point() else value for key, value in state.items()}


def save_configured(model: Any, path: Path, metadata: dict[str, Any]) -> None:
    """fp16 weights of a network that carries its constructor arguments (``model.config``), with them
    and ``metadata``, in one file."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    state = half_state(model.state_dict())
    torch.save({"state_dict": state, "config": model.config, "metadata": metadata}, path)


def load_configured(network_class: type, path: Path, missing: str) -> tuple[Any, dict[str, Any]]:
    """A network saved by :func:`save_configured` (float32, eval mode) and its metadata; ``missing`` is
    the message when there is no file."""
    import torch

    if not path.is_file():
        raise FileNotFoundError(missing)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = network_class(**payload["config"])
    model.load_state_dict(float_state(payload["state_dict"]))
    return model.eval(), dict(payload.get("metadata", {}))
